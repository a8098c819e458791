"""The reranker's recorded recipe and the command line built on it: models/reranker/training.json
holds the settings of every stage the shipped model was trained in, and they are the defaults of
``python -m rag.train.reranker`` (``--recipe`` reads another record, ``--stage N`` one stage's)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rag.config import REPO_ROOT
from rag.eval.datasets import datasets_dir

DATASETS = datasets_dir()
RECIPE = REPO_ROOT / "models" / "reranker" / "training.json"  # what the shipped model was trained with
STAGES = REPO_ROOT / ".cache" / "reranker-stages"  # the stages before the last, when all of them run
BCE = "BinaryCrossEntropyLoss (pos_weight = negatives/positives)"
DESCRIPTION = "Train the cross-encoder reranker we ship in models/reranker/."


def recorded_stages(record: dict[str, Any]) -> list[dict[str, Any]]:
    """A training.json's stages, the first first: each stage's record holds the one it continued
    from under ``continued_from``.

    >>> [s["seed"] for s in recorded_stages({"seed": 3, "continued_from": {"seed": 2, "continued_from": {"seed": 1}}})]
    [1, 2, 3]
    """
    stages = [record]
    while stages[-1].get("continued_from"):
        stages.append(stages[-1]["continued_from"])
    return stages[::-1]


def stage_settings(stage: dict[str, Any]) -> dict[str, Any]:
    """The command-line settings (argparse names) that reproduce one recorded stage. The first
    stage's record predates three keys; the code then always used 1 positive per query, a mining
    depth of 30 and every judged document as a possible positive, the defaults filled in here.

    >>> stage_settings({"nfcorpus": {"queries": 300}, "squad": {"questions": 1000}, "hard_negatives": 1,
    ...     "random_negatives": 2, "epochs": 1.0, "steps": 325, "batch_size": 16, "learning_rate": 1e-4,
    ...     "head_learning_rate": 1e-3, "max_length": 160, "seed": 13, "torch_threads": 1,
    ...     "loss": BCE})["positives"]
    1
    """
    if stage.get("loss", BCE) != BCE:
        raise SystemExit(f"the recorded stage was trained with {stage['loss']!r}; this trainer has only {BCE}")
    nf, sq = stage.get("nfcorpus", {}), stage.get("squad", {})
    return {
        "nf_queries": nf["queries"],
        "ranked_positives": bool(nf.get("ranked_positives_only", False)),
        "squad_paragraphs": sq.get("questions", 0),
        "positives": stage.get("positives_per_query", 1),
        "hard_negatives": stage["hard_negatives"],
        "random_negatives": stage["random_negatives"],
        "mine_depth": stage.get("mine_depth", 30),
        "epochs": stage["epochs"],
        "max_steps": stage["steps"],
        "batch_size": stage["batch_size"],
        "lr": stage["learning_rate"],
        "head_lr": stage["head_learning_rate"],
        "max_length": stage["max_length"],
        "seed": stage["seed"],
        "threads": stage["torch_threads"],
    }


def stage_dir(n: int) -> Path:
    """Where stage ``n`` goes when every stage runs and ``n`` is not the last."""
    return STAGES / f"stage-{n}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line. Every training default is read from ``--recipe`` (the shipped model's
    training.json): its last stage's settings, or with ``--stage N`` stage N's."""
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--recipe", type=Path, default=RECIPE)
    first.add_argument("--stage", type=int, default=0)
    known, _ = first.parse_known_args(argv)
    p = argparse.ArgumentParser(prog="python -m rag.train.reranker", description=DESCRIPTION)
    if not known.recipe.is_file():
        p.error(f"{known.recipe} is missing: it records the settings to train with (--recipe FILE)")
    stages = recorded_stages(json.loads(known.recipe.read_text()))
    if not 0 <= known.stage <= len(stages):
        p.error(f"--stage {known.stage}: {known.recipe} records stages 1 to {len(stages)}")
    n = known.stage or len(stages)
    d = stage_settings(stages[n - 1])
    last = known.stage in (0, len(stages))
    p.add_argument("--recipe", type=Path, default=RECIPE,
                   help="the training.json whose settings are the defaults (default: the shipped model's)")  # fmt: skip
    p.add_argument("--stage", type=int, default=0,
                   help=f"train only this recorded stage (1 to {len(stages)}); 0 = every stage in turn, "
                   "each from the one before, the flags given applying to all of them")  # fmt: skip
    p.add_argument("--out", default=str(REPO_ROOT / "models" / "reranker" if last else stage_dir(n)),
                   help="output folder (of the last stage when every stage runs)")  # fmt: skip
    p.add_argument("--base", default=str(stage_dir(n - 1)) if known.stage > 1 else "",
                   help="with --stage: start from this model (default: the previous stage's output; stage 1: "
                   "the packaged MiniLM)")  # fmt: skip
    p.add_argument("--nfcorpus", type=Path, default=DATASETS / "nfcorpus", help="BEIR NFCorpus folder")
    p.add_argument("--squad", type=Path, default=DATASETS / "squad-v1.1" / "dev-v1.1-first40.json")
    p.add_argument("--nf-queries", type=int, default=d["nf_queries"], help="NFCorpus train queries to use")
    p.add_argument("--squad-paragraphs", type=int, default=d["squad_paragraphs"],
                   help="SQuAD train questions (0 = none)")  # fmt: skip
    p.add_argument("--positives", type=int, default=d["positives"], help="positives per NFCorpus query")
    p.add_argument("--ranked-positives", action=argparse.BooleanOptionalAction, default=d["ranked_positives"],
                   help="NFCorpus positives only among judged documents our retriever ranks in its top "
                   "--mine-depth")  # fmt: skip
    p.add_argument("--hard-negatives", type=int, default=d["hard_negatives"], help="mined negatives per positive")
    p.add_argument("--random-negatives", type=int, default=d["random_negatives"], help="random negatives per positive")
    p.add_argument("--mine-depth", type=int, default=d["mine_depth"])
    p.add_argument("--epochs", type=float, default=d["epochs"])
    p.add_argument("--max-steps", type=int, default=d["max_steps"], help="stop after these steps (0 = epochs decide)")
    p.add_argument("--batch-size", type=int, default=d["batch_size"])
    p.add_argument("--lr", type=float, default=d["lr"], help="learning rate of the pretrained encoder")
    p.add_argument("--head-lr", type=float, default=d["head_lr"], help="learning rate of the classification head")
    p.add_argument("--max-length", type=int, default=d["max_length"])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--seed", type=int, default=d["seed"])
    p.add_argument("--threads", type=int, default=d["threads"], help="torch threads (0 = torch's default)")
    p.add_argument("--progress", action="store_true", help="show the trainer's progress bar")
    p.add_argument("--card-only", action="store_true", help="only rewrite README.md from training.json")
    p.add_argument("--metrics", type=Path, help="with --card-only: JSON from `python -m rag.eval retrieval --json`")
    args = p.parse_args(argv)
    if args.stage == 0 and args.base and not args.card_only:
        p.error("--base needs --stage N: every stage but the first starts from the one before")
    return args
