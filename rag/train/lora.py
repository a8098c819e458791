"""Train the LoRA adapters we ship in models/lora-<name>/: short answers grounded in the
numbered sources, a citation marker after each claim, the fixed phrase when the sources are
silent.

    python -m rag.train.lora [--model qwen2.5-0.5b] [--examples 4000] [--rank 16] [--max-steps 0]
                             [--out models/lora-<name>] ...

Data: :mod:`rag.train.lora_data` from SQuAD v1.1, train articles of
:func:`rag.eval.datasets.split_articles` only (dev articles give the quick before/after
check). The prompt is rendered with the tokenizer's chat template exactly as
:class:`rag.generate.TransformersGenerator` renders it; the loss covers only the answer
tokens (and the end-of-turn token that stops generation).

Runs on CPU (bf16 weights with bf16 autocast where the CPU has native bf16, else fp32) or
CUDA. ``--micro-batch`` examples per forward pass (padded; 1 computes no padding, the better
choice on a CPU), gradients accumulated over ``--batch-size`` examples. Saves the adapter
(bf16 safetensors, a few MB), training.json and a model card (README.md) with the data,
hyper-parameters, time and before/after metrics.

The defaults are what models/lora-qwen2.5-0.5b/training.json records (``make train-lora``:
``--build-only --data-out DIR`` on the CPU, then ``--data DIR``): 4,000 SQuAD questions plus 600
SQuAD 2.0 unanswerable ones, ~790 prompt tokens each, rank 16 on every linear layer, 288 steps of
16, 109 s on one H200 GPU. On a CPU the same run takes many hours; run it with nothing else
busy: two torch threads on a loaded 2-core machine crawl.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.cite import marker_numbers
from rag.config import Settings
from rag.eval.answer_metrics import contains_answer, em_score, f1_score, mean
from rag.eval.datasets import SquadArticle, datasets_dir, read_squad, split_articles
from rag.internals import peft_rename_warning_silenced
from rag.llm_packages import DEFAULT_LLM, packaged
from rag.models import offline_by_default, packaged_adapter_dir, pick_device, use_bf16
from rag.pipeline import is_abstention
from rag.prompting import PromptTemplate, load_template
from rag.train.lora_data import GroundedExample, build_split, build_unanswerable, leaks, read_jsonl, write_jsonl

log = logging.getLogger(__name__)
DATASETS = datasets_dir()
ALL_LINEAR = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"


# --- pure helpers -------------------------------------------------------------------------


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Learning-rate multiplier: linear warm-up, then linear decay to zero at ``total``.

    >>> [round(lr_factor(s, 10, 2), 2) for s in (0, 1, 2, 6, 10)]
    [0.5, 1.0, 1.0, 0.5, 0.0]
    """
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


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


# --- model pieces -------------------------------------------------------------------------


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


# --- data and training --------------------------------------------------------------------


def build_data(
    args: argparse.Namespace, settings: Settings, template: PromptTemplate
) -> tuple[list[GroundedExample], list[GroundedExample], dict[str, object]]:
    """-> (train examples, dev examples for the quick check, description for the card)."""
    if args.data and not Path(args.squad).is_file():  # prebuilt data: the split is only needed for the check
        log.warning("%s is missing: cannot check the prebuilt data for dev articles", args.squad)
        train_articles: list[SquadArticle] = []
        dev_articles: list[SquadArticle] = []
    else:
        train_articles, dev_articles = split_articles(read_squad(args.squad))
    dev_titles = sorted(a.title for a in dev_articles)
    info: dict[str, object] = {
        "source": f"{Path(args.squad).name} (SQuAD v1.1), split by article "
        "(rag.eval.datasets.split_articles, seed 13): no article in both",
        "train_articles": len(train_articles),
        "dev_articles": dev_titles,
    }
    if args.data:
        train = read_jsonl(Path(args.data) / "train.jsonl")
        dev = (
            read_jsonl(Path(args.data) / "dev.jsonl")[: args.eval_examples]
            if (Path(args.data) / "dev.jsonl").is_file()
            else []
        )
        info["prebuilt_data"] = str(args.data)
    else:
        from rag.embed import SentenceTransformerEmbedder

        embedder = SentenceTransformerEmbedder(settings)
        t0 = time.perf_counter()
        chars, share = args.max_source_chars, args.abstain_share
        train = build_split(train_articles, args.examples, embedder, template, chars, share, seed=args.seed)
        dev = build_split(dev_articles, args.eval_examples, embedder, template, chars, share, seed=args.seed + 1)
        if args.unanswerable and Path(args.squad_v2).is_file():
            # SQuAD 2.0 shares its paragraphs with v1.1: only the train side's articles are used.
            v2_train = [a for a in read_squad(args.squad_v2) if a.title not in set(dev_titles)]
            hard = build_unanswerable(v2_train, args.unanswerable, embedder, template, chars, seed=args.seed)
            train += hard
            info["unanswerable_source"] = f"{Path(args.squad_v2).name} (SQuAD 2.0), train-side articles only"
            info["unanswerable_examples"] = len(hard)
        info["build_seconds"] = round(time.perf_counter() - t0, 1)
    leaked = leaks(train, dev_titles)
    if leaked:  # a prebuilt file from another split would make the dev figures meaningless
        raise ValueError(f"Training data holds dev articles {sorted(leaked)}: rebuild it without --data.")
    info.update(
        {
            "train_examples": len(train),
            "train_abstentions": sum(ex.abstains for ex in train),
            "passages_per_prompt": dict(sorted(_count(len(ex.sources) for ex in train).items())),
            "max_source_chars": args.max_source_chars,
            "dev_examples": len(dev),
        }
    )
    return train, dev, info


def _count(values: Any) -> dict[int, int]:
    out: dict[int, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


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


def train(args: argparse.Namespace) -> dict[str, object]:
    offline_by_default()
    import torch

    from rag.models import autocast

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    settings = Settings(device=args.device, llm_model=args.model)
    device = pick_device(settings.device)
    bf16 = use_bf16(settings, device)
    template = load_template()
    train_set, dev_set, info = build_data(args, settings, template)
    if args.data_out:
        write_jsonl(train_set, Path(args.data_out) / "train.jsonl")
        write_jsonl(dev_set, Path(args.data_out) / "dev.jsonl")
    if args.build_only:
        return info
    if not train_set:
        raise ValueError("No training examples were built: raise --examples, or check --squad / --data.")

    model, tokenizer = load_model(settings, bf16, device)
    model = add_lora(model, args)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    encoded = [encode(tokenizer, ex.messages(template, args.max_source_chars), ex.target) for ex in train_set]
    info["prompt_tokens_mean"] = round(sum(len(ids) for ids, _ in encoded) / max(1, len(encoded)), 1)
    order = list(range(len(encoded)))
    random.Random(args.seed).shuffle(order)
    steps_per_epoch = math.ceil(len(order) / args.batch_size)
    # Like transformers' Trainer: --max-steps, when set, wins over --epochs (the data cycles).
    total = args.max_steps or math.ceil(steps_per_epoch * args.epochs)
    warmup = max(1, round(total * args.warmup))
    micro = args.micro_batch or (8 if device == "cuda" else 1)

    before = quick_check(model, tokenizer, dev_set, template, settings, args, bf16, device) if args.check_base else {}
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.0)
    checkpoint = Path(args.out) / "checkpoint"
    start, losses = load_checkpoint(checkpoint, model, optimizer, torch) if args.resume else (0, [])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s + start, total, warmup))
    model.train()
    t0 = time.perf_counter()
    skipped = 0
    for step in range(start, total):
        batch = [encoded[order[(step * args.batch_size + j) % len(order)]] for j in range(args.batch_size)]
        n_tokens = sum(n for _, n in batch)
        step_loss = 0.0
        for m in range(0, len(batch), micro):
            part = batch[m : m + micro]
            with autocast(device, bf16):
                if len(part) == 1:
                    loss = answer_loss(model, part[0][0], part[0][1], torch) / n_tokens
                else:
                    loss = batch_loss(model, part, pad_id, torch) / n_tokens
            loss.backward()
            step_loss += loss.detach().item()
        norm = torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        if torch.isfinite(norm):
            optimizer.step()
        else:  # one overflowing batch must not turn every adapter weight into NaN
            skipped += 1
            log.warning("step %d: gradient not finite, skipped", step + 1)
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(step_loss if math.isfinite(step_loss) else 0.0)
        done = step + 1
        if done % args.log_every == 0 or done == total:
            elapsed = time.perf_counter() - t0
            rate = elapsed / (done - start)
            recent = losses[-args.log_every :]
            log.info("step %d/%d loss %.4f  %.2f s/step  eta %.0f s", done, total, sum(recent) / len(recent),
                     rate, rate * (total - done))  # fmt: skip
        if args.save_every and done % args.save_every == 0 and done < total:
            save_checkpoint(checkpoint, model, optimizer, done, losses, torch)
    seconds = time.perf_counter() - t0

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for p in trainable:  # bf16 on disk halves the file; the app upcasts when it merges
        p.data = p.data.to(torch.bfloat16)
    model.save_pretrained(str(out))
    shutil.rmtree(checkpoint, ignore_errors=True)
    # Name the public base model in the config rather than this machine's cache folder.
    base = packaged(args.model)
    base_id = base.hf_id if base else args.model
    config_path = out / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = base_id
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    for p in trainable:  # the check decodes as the app does after merging: in the base's dtype
        p.data = p.data.to(torch.bfloat16 if bf16 else torch.float32)
    after = quick_check(model, tokenizer, dev_set, template, settings, args, bf16, device)
    info.update(
        {
            "base_model": base.describe() + ", de-quantised" if base else base_id,
            "model_setting": args.model,
            "lora": {
                "rank": args.rank,
                "alpha": args.alpha,
                "dropout": args.dropout,
                "target_modules": args.target_modules.split(","),
            },
            "trainable_parameters": sum(p.numel() for p in trainable),
            "epochs": args.epochs,
            "steps": total,
            "resumed_at_step": start,
            "skipped_steps": skipped,
            "examples_seen": total * args.batch_size,
            "batch_size": args.batch_size,
            "micro_batch": micro,
            "learning_rate": args.lr,
            "warmup_steps": warmup,
            "schedule": "linear warm-up, linear decay to 0; AdamW, no weight decay, grad-norm clip 1.0",
            "loss": "cross-entropy on the answer tokens and the end-of-turn token only",
            "final_loss": round(sum(losses[-args.log_every :]) / max(1, len(losses[-args.log_every :])), 4),
            "train_seconds": round(seconds, 1),
            "seconds_per_step": round(seconds / max(1, total - start), 2),
            "device": _device_name(device, torch) + (" (bf16 weights + autocast)" if bf16 else " (fp32)"),
            "torch_threads": torch.get_num_threads(),
            "seed": args.seed,
            "quick_check": {
                "what": f"{len(dev_set)} dev-article examples, prompt as in training, decoded by the app's "
                f"generator (greedy, repetition penalty {settings.repetition_penalty:g}, abstention gate "
                f"{settings.abstain_min_prob:g}), at most {args.eval_max_new_tokens} new tokens, raw output "
                "(before the app's citation check)",
                "before": _rounded(before),
                "after": _rounded(after),
            },
        }
    )
    (out / "training.json").write_text(json.dumps(info, indent=2) + "\n")
    (out / "README.md").write_text(render_card(info))
    return info


def _device_name(device: str, torch: Any) -> str:
    return f"cuda ({torch.cuda.get_device_name()})" if device == "cuda" else "cpu"


def _rounded(d: dict[str, float | None]) -> dict[str, float | None]:
    return {k: (round(v, 4) if v is not None else None) for k, v in d.items()}


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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m rag.train.lora", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=DEFAULT_LLM,
                   help="base generator: packaged name (qwen2.5-0.5b, ...), .gguf file, folder or HF id")  # fmt: skip
    p.add_argument("--out", default="", help="output folder for the adapter and its card (default: models/lora-<name>)")
    p.add_argument("--squad", type=Path, default=DATASETS / "squad-v1.1" / "dev-v1.1-first40.json")
    p.add_argument("--examples", type=int, default=4000, help="training questions to build examples from")
    p.add_argument("--squad-v2", type=Path, default=DATASETS / "squad-v2.0" / "dev-v2.0-11articles.json")
    p.add_argument("--unanswerable", type=int, default=600,
                   help="extra abstentions from SQuAD 2.0 unanswerable questions (train-side articles)")  # fmt: skip
    p.add_argument("--abstain-share", type=float, default=0.25, help="share of examples without the gold passage")
    p.add_argument("--max-source-chars", type=int, default=800, help="passage length cap in the training prompts")
    p.add_argument("--data", default="", help="folder with train.jsonl (and dev.jsonl) from --data-out: skip mining")
    p.add_argument("--data-out", default="", help="write the built examples to this folder as JSONL")
    p.add_argument("--build-only", action="store_true", help="build (and write) the data, do not train")
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--alpha", type=float, default=32.0)
    # No LoRA dropout by default: its random masks took ~20% of a CPU training step (profiled),
    # and one pass over the data hardly needs the regularisation.
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--target-modules", default=ALL_LINEAR, help="comma-separated module names")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--max-steps", type=int, default=0, help="optimizer steps; overrides --epochs (0 = epochs decide)")
    p.add_argument("--batch-size", type=int, default=16, help="examples per optimizer step (gradient accumulation)")
    p.add_argument("--micro-batch", type=int, default=16,
                   help="examples per forward pass (0: 8 on a GPU, 1 on a CPU, where padding only costs)")  # fmt: skip
    p.add_argument("--save-every", type=int, default=10, help="steps between checkpoints (0 = none)")
    p.add_argument("--no-resume", dest="resume", action="store_false",
                   help="start afresh even if <out>/checkpoint holds an interrupted run")  # fmt: skip
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--warmup", type=float, default=0.05, help="warm-up share of the steps")
    p.add_argument("--eval-examples", type=int, default=48, help="dev examples for the before/after check (0 = none)")
    p.add_argument("--eval-max-new-tokens", type=int, default=32)
    p.add_argument("--no-check-base", dest="check_base", action="store_false",
                   help="skip the 'before' half of the quick check")  # fmt: skip
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--seed", type=int, default=13)
    args = p.parse_args(argv)
    if not args.out:
        folder = packaged_adapter_dir(args.model)
        if folder is None:
            p.error("--out is required for a base model that is not a packaged name")
        args.out = str(folder)
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    info = train(parse_args(argv))
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
