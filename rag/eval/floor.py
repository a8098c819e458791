"""`python -m rag.eval floor`: choose the cross-encoder score below which a passage does not
answer a question (:data:`rag.rerank.RELEVANCE_FLOOR`), on the train side of the SQuAD split.

    python -m rag.eval floor [--limit 300] [--held-back 4] [--held-back-limit 150]

Some train-side articles are indexed by the app's own Indexer, others held back (as
``python -m rag.eval answers`` does on the dev side, whose figures this never looks at). For
each question the app's retrieval and the reranker run as in the app; recorded are the
cross-encoder score of the best candidate that holds a gold answer (indexed articles) and the
best candidate's score (held-back articles, where nothing can answer). For each floor the
table shows the share of answerable questions whose evidence survives it and the share of
held-back questions it refuses before the generator is asked.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.eval.answer_metrics import contains_answer
from rag.eval.answer_plan import DEFAULT_SQUAD, plan, write_articles
from rag.eval.datasets import read_squad, split_articles

FLOORS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3)


def floor_table(evidence: list[float | None], held_back: list[float], floors: tuple[float, ...] = FLOORS) -> list[dict]:
    """Per floor: share of answerable questions whose best answer-bearing candidate scores at
    least the floor (None: retrieval found no such candidate, never kept), and share of
    held-back questions whose best candidate scores below it (refused without the model).

    >>> for row in floor_table([0.9, 0.04, None], [0.01, 0.2], (0.03, 0.05)):
    ...     print(row)
    {'floor': 0.03, 'evidence_kept': 0.667, 'held_back_refused': 0.5}
    {'floor': 0.05, 'evidence_kept': 0.333, 'held_back_refused': 0.5}
    """
    rows = []
    for f in floors:
        kept = sum(1 for s in evidence if s is not None and s >= f) / max(1, len(evidence))
        refused = sum(1 for s in held_back if s < f) / max(1, len(held_back))
        rows.append({"floor": f, "evidence_kept": round(kept, 3), "held_back_refused": round(refused, 3)})
    return rows


def measure(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    from rag.pipeline import retrieval_trace
    from rag.services import Services

    train_side = split_articles(read_squad(args.squad))[0]
    p = plan(train_side, args.held_back, args.limit, args.held_back_limit, args.seed)
    folder = settings.home_dir / "squad"
    write_articles(p.indexed, folder)
    services = Services(settings, generator=None)
    services.indexer.ingest_paths([folder])
    if services.reranker is None:
        raise SystemExit("The floor is a cross-encoder score: set RAG_RERANKER_MODEL to a reranker.")
    evidence: list[float | None] = []
    held: list[float] = []
    for q in p.questions:
        tr = retrieval_trace(settings, services.retriever, services.reranker, q.question)
        hits, scores = tr.first, tr.rerank_scores
        if not hits:
            (evidence if q.indexed else held).append(None if q.indexed else 0.0)  # type: ignore[arg-type]
            continue
        if q.indexed:
            good = [
                scores[h.chunk.id] for h in hits if h.chunk.id in scores and contains_answer(h.chunk.text, q.answers)
            ]
            evidence.append(max(good) if good else None)
        else:
            held.append(max(scores.values()))
    return {
        "articles": "train side of the SQuAD v1.1 split",
        "held_back_articles": [a.title for a in p.held_back],
        "questions_indexed": len(evidence),
        "questions_held_back": len(held),
        "evidence_retrieved": round(sum(s is not None for s in evidence) / max(1, len(evidence)), 3),
        "floors": floor_table(evidence, held),
    }


def run(args: argparse.Namespace) -> int:
    base = Settings()
    home = Path(tempfile.mkdtemp(prefix="grounded-floor-"))
    try:
        result = measure(args, base.model_copy(update={"home": home, "model_cache": base.model_cache_dir}))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("floor", help="cross-encoder score floor: evidence kept vs held-back questions refused")
    p.add_argument("--squad", type=Path, default=DEFAULT_SQUAD, help="SQuAD v1.1 JSON file")
    p.add_argument("--held-back", type=int, default=4, help="train-side articles NOT indexed")
    p.add_argument("--limit", type=int, default=300, help="questions from indexed articles")
    p.add_argument("--held-back-limit", type=int, default=150, help="questions from held-back articles")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)
