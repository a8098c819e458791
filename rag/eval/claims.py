"""`python -m rag.eval claims`: balanced accuracy of the answer check on held-out claims.

    python -m rag.eval claims                       # word overlap, the check the app runs
    python -m rag.eval claims --model DIR --json    # a trained claim checker beside it

Sets, none of them trained on (:mod:`rag.train.claim_checker`):

- ``squad_dev``: claims built from the SQuAD dev articles as the training pairs are
  (:func:`rag.train.claim_data.squad_pairs`, another seed) plus SQuAD 2.0's questions on the
  dev articles (unanswerable ones with their plausible answer);
- ``<set>_held_out``: the held-out share of each claim/NLI set; ``summedits_dev``: the SummEdits
  domains held out.

A pair is predicted supported at support 0.5 or more by word overlap (:func:`rag.cite.support`,
the app's threshold) and at probability 0.5 or more by a checker
(:mod:`rag.train.claim_checker`).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import Any

from rag.cite import support
from rag.train.claim_data import (
    NLI_SETS,
    SUMMEDITS_DEV_DOMAINS,
    ClaimPair,
    balanced_accuracy,
    hold_out,
    nli_pairs,
    squad2_pairs,
    squad_pairs,
    summedits_pairs,
)

THRESHOLD = 0.5
MAX_LENGTH = 256  # tokens of claim + passage: the length the checker trains at


def dev_sets(limit: int = 0, seed: int = 1) -> dict[str, list[ClaimPair]]:
    """Every evaluation set by name; ``limit`` pairs of each at most (a seeded sample)."""
    import random

    from rag.eval.datasets import read_squad, split_articles
    from rag.train.claim_checker import DATASETS, HOLD_OUT, dev_titles

    _, dev = split_articles(read_squad(DATASETS / "squad-v1.1" / "dev-v1.1-first40.json"))
    sets = {"squad_dev": squad_pairs(dev, seed=seed)}
    sets["squad_dev"] += squad2_pairs(DATASETS / "squad-v2.0" / "dev-v2.0-11articles.json", keep_titles=dev_titles())
    claims = DATASETS / "claims"
    for name in NLI_SETS:
        sets[f"{name}_held_out"] = hold_out(nli_pairs(claims, name), HOLD_OUT, 0)[1]  # the trainer's seed
    sets["summedits_dev"] = summedits_pairs(claims, SUMMEDITS_DEV_DOMAINS)
    if limit:
        sets = {k: random.Random(seed).sample(v, min(limit, len(v))) for k, v in sets.items()}
    return sets


def scores(pairs: Sequence[ClaimPair], model: Any) -> list[float]:
    """The checker's probability for each pair (``model``: a sentence-transformers CrossEncoder)."""
    out = model.predict([(p.claim, p.passage) for p in pairs], batch_size=32, show_progress_bar=False)
    return [float(x) for x in out]


def judged(pairs: Sequence[ClaimPair], predicted: Sequence[int]) -> dict[str, Any]:
    """Balanced accuracy of one check's predictions, and its accuracy per kind of pair."""
    kinds: dict[str, list[int]] = {}
    for p, y in zip(pairs, predicted, strict=True):
        kinds.setdefault(p.kind, []).append(int(y == p.label))
    return {
        "balanced_accuracy": round(balanced_accuracy([p.label for p in pairs], predicted), 4),
        "accuracy_by_kind": {k: round(sum(v) / len(v), 4) for k, v in sorted(kinds.items())},
    }


def report(pairs: Sequence[ClaimPair], probs: Sequence[float] | None = None) -> dict[str, Any]:
    """Word overlap's figures on these pairs, and the checker's when its probabilities are given."""
    overlap = [int(support(p.sentence, p.passage, p.question) >= THRESHOLD) for p in pairs]
    out: dict[str, Any] = {"pairs": len(pairs), "supported": sum(p.label for p in pairs)}
    out["word_overlap"] = judged(pairs, overlap)
    if probs is not None:
        out["checker"] = judged(pairs, [int(x >= THRESHOLD) for x in probs])
    return out


def run(args: argparse.Namespace) -> int:
    model = None
    if args.model:
        from sentence_transformers.cross_encoder import CrossEncoder

        from rag.config import Settings
        from rag.models import offline_by_default, pick_device

        offline_by_default()
        model = CrossEncoder(args.model, device=pick_device(Settings().device), max_length=MAX_LENGTH)
    out: dict[str, Any] = {"model": args.model or None, "threshold": THRESHOLD}
    for name, pairs in dev_sets(args.limit).items():
        t0 = time.perf_counter()
        out[name] = report(pairs, scores(pairs, model) if model is not None else None)
        out[name]["ms_per_pair"] = round((time.perf_counter() - t0) * 1000 / max(1, len(pairs)), 2)
        if not args.json:
            r = out[name]
            line = f"{name:24s} {r['pairs']:6d} pairs  word overlap {r['word_overlap']['balanced_accuracy']:.3f}"
            if "checker" in r:
                line += f"  checker {r['checker']['balanced_accuracy']:.3f}  {r['checker']['accuracy_by_kind']}"
            print(line)
    if args.json:
        print(json.dumps(out, indent=2))
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("claims", help="balanced accuracy of the answer check on held-out claims", description=__doc__)
    p.add_argument("--model", default="", help="a claim checker to compare (a folder or a Hugging Face id)")
    p.add_argument("--limit", type=int, default=0, help="at most N pairs of each set (a seeded sample)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
