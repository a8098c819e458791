"""The model card of a LoRA adapter (models/lora-<name>/README.md), rendered from what its
training.json records: data, hyper-parameters, time and the before/after quick check."""

from __future__ import annotations

from typing import Any


def _fmt(v: object) -> str:
    return "n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def render_card(info: dict[str, Any]) -> str:
    """The model card (models/lora-<name>/README.md) from training.json's content."""
    check = info.get("quick_check", {})
    before, after = check.get("before", {}), check.get("after", {})
    rows = [
        ("dev loss per answer token", "dev_loss"),
        ("token-F1", "f1"),
        ("exact match", "em"),
        ("citation rate (answered, any marker)", "citation_rate"),
        ("citation precision", "citation_precision"),
        ("false abstention (answerable)", "false_abstention"),
        ("correct abstention (gold left out)", "correct_abstention"),
    ]
    table = "\n".join(f"| {label} | {_fmt(before.get(k))} | {_fmt(after.get(k))} |" for label, k in rows)
    lora = info.get("lora", {})
    return f"""# Grounded-answer LoRA adapter for {info.get("model_setting")}

A LoRA adapter (peft) for `{info.get("base_model")}`. It teaches the model to
answer in a short span copied from the numbered sources followed by the source's marker, e.g.
`Denver Broncos [2].`, and to reply exactly with the abstention phrase of `prompts/abstain.md`
when no source holds the answer. The app merges it into the generator on load
(`RAG_LORA_ADAPTER=packaged`, the default; `none` switches it off; a folder uses another).

Trained by `python -m rag.train.lora` (see `training.json` for every figure below).

## Data
- {info.get("source")}.
- {info.get("train_articles")} train articles; the {len(info.get("dev_articles", []))} dev articles
  ({", ".join(info.get("dev_articles", []))}) are never seen in training, not even as distractors.
- {info.get("train_examples")} examples, {info.get("train_abstentions")} of them abstentions (gold paragraph
  and every passage holding a gold answer left out). Passages per prompt: {info.get("passages_per_prompt")};
  the gold paragraph plus distractors ranked high by our own hybrid retriever (BM25 + MiniLM, RRF),
  in random positions, each cut to {info.get("max_source_chars")} characters around the answer.
  Mean prompt length {info.get("prompt_tokens_mean")} tokens.
- The prompt is `prompts/answer.md` + `prompts/source.md`, rendered by the app's own code and the
  tokenizer's chat template; the loss covers only the answer tokens.

## Hyper-parameters
- LoRA rank {lora.get("rank")}, alpha {lora.get("alpha")}, dropout {lora.get("dropout")}, modules
  {", ".join(lora.get("target_modules", []))}; {info.get("trainable_parameters")} trainable parameters.
- {info.get("steps")} steps x {info.get("batch_size")} examples ({info.get("examples_seen")} seen),
  learning rate {info.get("learning_rate")}, {info.get("schedule")}. Loss: {info.get("loss")}.
- Seed {info.get("seed")}.

## Time
{info.get("train_seconds")} s of training ({info.get("seconds_per_step")} s/step) on
{info.get("device")}, {info.get("torch_threads")} threads.

## Before / after (quick check at the end of training)
{check.get("what", "")}.

| metric | base | adapter |
| --- | --- | --- |
{table}

The full evaluation through the app (retrieval, citation check, articles not indexed) is in
`docs/quality.md`: `python -m rag.eval answers`.

## Limits
Trained on English Wikipedia paragraphs (SQuAD); answers are short spans, not explanations.
The adapter fits only the weights of `{info.get("base_model")}`.
"""
