"""The abstention gate: the local model may start the fixed abstention phrase only when it is
sure enough (``Tuning.abstain_min_prob``); below that it must write its best answer, which the
app's citation check then verifies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def abstention_starts(tokenizer: Any, abstain: str) -> list[int]:
    """The tokens that can start the abstention phrase as the model writes it at the start of its
    turn: the phrase's first token, and the first word in each case, with or without a leading
    space, where that is one token. The gate decides at the very first step, over all of them: a
    model kept from "The documents..." (or gated after two tokens) wrote "the documents..." or
    "The document does not contain..." instead of answering."""
    ids: list[int] = tokenizer(abstain, add_special_tokens=False)["input_ids"][:1]
    cases = (str, str.lower, str.capitalize, str.upper)
    for text in (f"{space}{case(w)}" for w in abstain.split()[:1] for case in cases for space in ("", " ")):
        toks = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(toks) == 1 and toks[0] not in ids:
            ids.append(toks[0])
    return ids


def gate_abstention(scores: Any, starts: Sequence[int], min_prob: float) -> float:
    """The abstention gate, applied to the first decoding step; edits ``scores`` (1, vocab) in place.

    The model may start the abstention phrase only if it gives the tokens that start it
    (``starts``) at least ``min_prob`` probability together. Below that they are all forbidden
    and the model writes its best answer instead, which the app's citation check then verifies.
    Returns that probability.

    >>> import torch
    >>> scores = torch.log(torch.tensor([[0.5, 0.3, 0.2]]))  # tokens 0 and 1 start the abstention
    >>> round(gate_abstention(scores, [0, 1], 0.7), 2), bool(scores.isfinite().all())  # 0.8: allowed
    (0.8, True)
    >>> round(gate_abstention(scores, [0, 1], 0.9), 2), scores[0].tolist()[:2]  # 0.8 < 0.9
    (0.8, [-inf, -inf])
    """
    import torch

    p = float(torch.softmax(scores[0].float(), dim=-1)[list(starts)].sum())
    if p < min_prob:
        scores[0, list(starts)] = -float("inf")
    return p


def abstention_processor(starts: list[int], prompt_len: int, min_prob: float) -> Any:
    """:func:`gate_abstention` as a transformers ``LogitsProcessor`` for a prompt of
    ``prompt_len`` tokens: it gates the answer's first token only."""
    from transformers import LogitsProcessor

    class AbstentionGate(LogitsProcessor):
        def __call__(self, input_ids: Any, scores: Any) -> Any:
            if input_ids.shape[-1] == prompt_len:  # the answer's first token only
                gate_abstention(scores, starts, min_prob)
            return scores

    return AbstentionGate()
