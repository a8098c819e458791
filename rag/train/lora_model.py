"""The model side of LoRA training: the base generator loaded for training, the adapter put on
it, the loss over the answer tokens only (one example, or a padded batch), the learning-rate
schedule, and checkpoints a stopped run resumes from."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.internals import peft_rename_warning_silenced

log = logging.getLogger(__name__)


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Learning-rate multiplier: linear warm-up, then linear decay to zero at ``total``.

    >>> [round(lr_factor(s, 10, 2), 2) for s in (0, 1, 2, 6, 10)]
    [0.5, 1.0, 1.0, 0.5, 0.0]
    """
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def encode(tokenizer: Any, messages: list[dict[str, str]], target: str) -> tuple[list[int], int]:
    """-> (prompt ids + target ids + end-of-turn, number of target tokens incl. end-of-turn).

    The prompt goes through the chat template with the generation prompt, as at inference;
    the target is tokenised on its own, as the model produces it after that prompt."""
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    answer = tokenizer(target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return list(prompt["input_ids"]) + answer, len(answer)


def answer_loss(model: Any, ids: list[int], n_target: int, torch: Any) -> Any:
    """Summed cross-entropy over the target tokens only. Only the last ``n_target + 1``
    positions go through the output layer (the vocabulary projection is a fifth of the
    model's compute when done for the whole prompt)."""
    x = torch.tensor([ids], device=model.device)
    logits = model(input_ids=x, logits_to_keep=n_target + 1).logits[0, :n_target]
    return torch.nn.functional.cross_entropy(logits.float(), x[0, -n_target:], reduction="sum")


def padded_batch(
    batch: Sequence[tuple[list[int], int]], pad_id: int
) -> tuple[list[list[int]], list[list[int]], list[list[int]]]:
    """-> (input ids, attention mask, labels) for several examples, right-padded to the longest;
    labels are -100 everywhere but the target tokens (the loss ignores those positions).

    >>> padded_batch([([5, 6, 7], 1), ([5, 8], 1)], 0)
    ([[5, 6, 7], [5, 8, 0]], [[1, 1, 1], [1, 1, 0]], [[-100, -100, 7], [-100, 8, -100]])
    """
    longest = max(len(ids) for ids, _ in batch)
    ids_out, mask, labels = [], [], []
    for ids, n in batch:
        pad = longest - len(ids)
        ids_out.append(list(ids) + [pad_id] * pad)
        mask.append([1] * len(ids) + [0] * pad)
        labels.append([-100] * (len(ids) - n) + list(ids[len(ids) - n :]) + [-100] * pad)
    return ids_out, mask, labels


def batch_loss(model: Any, batch: Sequence[tuple[list[int], int]], pad_id: int, torch: Any) -> Any:
    """Summed cross-entropy over the target tokens of several examples in one padded forward
    pass (for a GPU, where one example per pass leaves it idle; the CPU path is answer_loss)."""
    ids, mask, labels = (torch.tensor(t, device=model.device) for t in padded_batch(batch, pad_id))
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    return torch.nn.functional.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100, reduction="sum"
    )


def load_model(settings: Settings, bf16: bool, device: str) -> tuple[Any, Any]:
    import torch

    from rag.llm_load import load_causal_lm

    model, tokenizer, _ = load_causal_lm(settings)
    model = model.to(device=device, dtype=torch.bfloat16 if bf16 else torch.float32)
    model.config.use_cache = False  # training never reuses keys and values
    return model, tokenizer


def add_lora(model: Any, args: argparse.Namespace) -> Any:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=args.rank,
        lora_alpha=args.alpha,
        lora_dropout=args.dropout,
        target_modules=[m.strip() for m in args.target_modules.split(",") if m.strip()],
        task_type="CAUSAL_LM",
    )
    with peft_rename_warning_silenced():
        peft_model = get_peft_model(model, config)
    for p in peft_model.parameters():
        if p.requires_grad:  # adapter weights train in fp32 even on a bf16 base
            p.data = p.data.float()
    return peft_model


def save_checkpoint(path: Path, model: Any, optimizer: Any, step: int, losses: list[float], torch: Any) -> None:
    """Adapter weights, optimizer state and progress, written beside and renamed (a kill
    mid-write keeps the previous checkpoint)."""
    from peft import get_peft_model_state_dict

    path.mkdir(parents=True, exist_ok=True)
    state = {
        "adapter": get_peft_model_state_dict(model),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "losses": losses,
    }
    tmp = path / "state.pt.tmp"
    torch.save(state, tmp)
    tmp.replace(path / "state.pt")


def load_checkpoint(path: Path, model: Any, optimizer: Any, torch: Any) -> tuple[int, list[float]]:
    """-> (steps done, their losses); (0, []) when there is no checkpoint."""
    from peft import set_peft_model_state_dict

    if not (path / "state.pt").is_file():
        return 0, []
    state = torch.load(path / "state.pt", map_location=model.device, weights_only=True)
    set_peft_model_state_dict(model, state["adapter"])
    optimizer.load_state_dict(state["optimizer"])
    log.info("resuming from %s at step %d", path, state["step"])
    return int(state["step"]), list(state["losses"])
