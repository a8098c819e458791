"""The LoRA adapter's quick check, run before and after training on held-out dev examples: the
loss per answer token, and the answers the app's own generator writes with the model, scored for
F1, exact match, citations and abstention."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from rag.cite import marker_numbers
from rag.config import Settings
from rag.eval.answer_metrics import contains_answer, em_score, f1_score, mean
from rag.pipeline import is_abstention
from rag.prompting import PromptTemplate
from rag.train.lora_data import GroundedExample
from rag.train.lora_model import answer_loss, encode


def score_output(example: GroundedExample, output: str, abstain: str) -> dict[str, float]:
    """Score one raw generated answer against its example (before the app's citation check).

    Keys: ``abstained``; for answerable examples ``f1``, ``em`` (0 when it abstained) and,
    when it answered, ``cited`` (any marker) and ``cite_precision`` (share of the cited passage
    numbers whose passage holds a gold answer).

    >>> from rag.types import Chunk
    >>> src = (Chunk("a", "d", "f.txt", None, 0, 20, "Built in 1889."),)
    >>> ex = GroundedExample("q", "T", "When?", ("1889",), src, 1, "1889 [1].")
    >>> score_output(ex, "It was built in 1889 [1].", "No answer.")  # doctest: +ELLIPSIS
    {'abstained': 0.0, 'f1': 0.333..., 'em': 0.0, 'cited': 1.0, 'cite_precision': 1.0}
    """
    abstained = is_abstention(output, abstain)
    out: dict[str, float] = {"abstained": float(abstained)}
    if example.abstains:
        return out
    out["f1"] = 0.0 if abstained else f1_score(output, example.answers)
    out["em"] = 0.0 if abstained else em_score(output, example.answers)
    if not abstained:
        cited = [n for n in dict.fromkeys(marker_numbers(output)) if 1 <= n <= len(example.sources)]
        out["cited"] = float(bool(cited))
        if cited:
            good = sum(contains_answer(example.sources[n - 1].text, example.answers) for n in cited)
            out["cite_precision"] = good / len(cited)
    return out


def summarise(scores: Sequence[tuple[GroundedExample, dict[str, float]]]) -> dict[str, float | None]:
    """Averages over a quick-check run.

    >>> from rag.types import Chunk
    >>> c = (Chunk("a", "d", "f.txt", None, 0, 1, "x"),)
    >>> yes = GroundedExample("1", "T", "?", ("x",), c, 1, "x [1].")
    >>> no = GroundedExample("2", "T", "?", ("y",), c, 0, "No.")
    >>> s = summarise([(yes, {"abstained": 0.0, "f1": 1.0, "em": 1.0, "cited": 1.0, "cite_precision": 1.0}),
    ...                (no, {"abstained": 1.0})])
    >>> s["f1"], s["correct_abstention"], s["false_abstention"]
    (1.0, 1.0, 0.0)
    """
    answerable = [s for ex, s in scores if not ex.abstains]
    silent = [s for ex, s in scores if ex.abstains]
    return {
        "examples": float(len(scores)),
        "f1": mean([s["f1"] for s in answerable]),
        "em": mean([s["em"] for s in answerable]),
        "citation_rate": mean([s["cited"] for s in answerable if "cited" in s]),
        "citation_precision": mean([s["cite_precision"] for s in answerable if "cite_precision" in s]),
        "false_abstention": mean([s["abstained"] for s in answerable]),
        "correct_abstention": mean([s["abstained"] for s in silent]),
    }


def quick_check(
    model: Any, tokenizer: Any, examples: Sequence[GroundedExample], template: PromptTemplate,
    settings: Settings, args: argparse.Namespace, bf16: bool, device: str,
) -> dict[str, float | None]:  # fmt: skip
    """Dev loss per answer token, and the metrics of the answers the app's own generator
    (:class:`rag.generate.TransformersGenerator`: its decode loop, logits processors and
    abstention gate) writes with this model, on held-out dev examples."""
    import torch

    from rag.generate import TransformersGenerator
    from rag.models import autocast

    if not examples:
        return {}
    model.eval()
    generator = TransformersGenerator.around(
        model, tokenizer, settings.model_copy(update={"max_new_tokens": args.eval_max_new_tokens, "temperature": 0.0})
    )
    total, tokens = 0.0, 0
    scores = []
    for ex in examples:
        messages = ex.messages(template, args.max_source_chars)
        ids, n = encode(tokenizer, messages, ex.target)
        with torch.inference_mode(), autocast(device, bf16):  # the loss as in training
            total += float(answer_loss(model, ids, n, torch))
        tokens += n
        # Decoding without autocast, as the app does (bf16 weights already; autocast only slows it).
        text = "".join(generator.stream(messages)).strip()
        scores.append((ex, score_output(ex, text, template.abstain)))
    result = summarise(scores)
    result["dev_loss"] = total / max(tokens, 1)
    return result
