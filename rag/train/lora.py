"""Train the LoRA adapters we ship in models/lora-<name>/: short answers grounded in the
numbered sources, a citation marker after each claim, the fixed phrase when the sources are
silent.

    python -m rag.train.lora [--model qwen2.5-0.5b] [--examples 4000] [--rank 16] [--max-steps 0]
                             [--out models/lora-<name>] ...

Data: :mod:`rag.train.lora_data` from SQuAD v1.1, train articles of
:func:`rag.eval.datasets.split_articles` only (dev articles give the quick before/after
check). The prompt is rendered with the tokenizer's chat template exactly as
:class:`rag.generate.TransformersGenerator` renders it; the loss covers only the answer
tokens (and the end-of-turn token that stops generation; :mod:`rag.train.lora_model` holds the
loss, the adapter and the checkpoints).

Runs on CPU (bf16 weights with bf16 autocast where the CPU has native bf16, else fp32) or
CUDA. ``--micro-batch`` examples per forward pass (padded; 1 computes no padding, the better
choice on a CPU), gradients accumulated over ``--batch-size`` examples. Saves the adapter
(bf16 safetensors, a few MB), training.json and a model card (README.md,
:mod:`rag.train.lora_card`) with the data, hyper-parameters, time and the before/after metrics of
:mod:`rag.train.lora_check`.

The defaults (:mod:`rag.train.lora_args`) are what models/lora-qwen2.5-0.5b/training.json records
(``make train-lora``: ``--build-only --data-out DIR`` on the CPU, then ``--data DIR``): 4,000
SQuAD questions plus 600 SQuAD 2.0 unanswerable ones, ~790 prompt tokens each, rank 16 on every
linear layer, 288 steps of 16, 109 s on one H200 GPU. On a CPU the same run takes many hours; run
it with nothing else busy: two torch threads on a loaded 2-core machine crawl.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import shutil
import time
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.eval.datasets import SquadArticle, read_squad, split_articles
from rag.llm_packages import packaged
from rag.models import offline_by_default, pick_device, use_bf16
from rag.prompting import PromptTemplate, load_template
from rag.train.lora_args import parse_args
from rag.train.lora_card import render_card
from rag.train.lora_check import quick_check
from rag.train.lora_data import GroundedExample, build_split, build_unanswerable, leaks, read_jsonl, write_jsonl
from rag.train.lora_model import (
    add_lora,
    answer_loss,
    batch_loss,
    encode,
    load_checkpoint,
    load_model,
    lr_factor,
    save_checkpoint,
)

log = logging.getLogger(__name__)


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
                f"generator (greedy, repetition penalty {settings.tuning.repetition_penalty:g}, abstention gate "
                f"{settings.tuning.abstain_min_prob:g}), at most {args.eval_max_new_tokens} new tokens, raw output "
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


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    info = train(parse_args(argv))
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
