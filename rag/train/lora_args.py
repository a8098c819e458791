"""The command line of ``python -m rag.train.lora``. Its defaults are the settings
models/lora-qwen2.5-0.5b/training.json records, so ``make train-lora`` reproduces that adapter."""

from __future__ import annotations

import argparse
from pathlib import Path

from rag.eval.datasets import datasets_dir
from rag.llm_packages import DEFAULT_LLM
from rag.models import packaged_adapter_dir

DATASETS = datasets_dir()
ALL_LINEAR = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
DESCRIPTION = """Train the LoRA adapters we ship in models/lora-<name>/: short answers grounded in the
numbered sources, a citation marker after each claim, the fixed phrase when the sources are
silent."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m rag.train.lora", description=DESCRIPTION)
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
