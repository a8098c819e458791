"""IR metrics via ir-measures (pytrec_eval underneath, the code BEIR reports with) and helpers.

Shapes: ``qrels`` {query id: {doc id: grade}}, ``run`` {query id: {doc id: score}}.
Metric names as ir-measures parses them after lower-casing our labels: ndcg@10 -> nDCG@10
(linear gains, as BEIR), recall@k -> R@k, mrr@10 -> RR@10. (ranx was tried first: its numba
JIT costs ~30 s per process here, too slow for a CLI and CI.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rag.types import ScoredChunk

METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")


def evaluate(
    qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]], metrics: Sequence[str] = METRICS
) -> dict[str, float]:
    """Mean of each metric over the queries in ``qrels`` (a query with no results scores 0).

    >>> qrels = {"q1": {"d1": 1}, "q2": {"d3": 2}}
    >>> run = {"q1": {"d1": 2.0, "d2": 1.0}, "q2": {"d2": 2.0, "d3": 1.0}}
    >>> {k: round(v, 3) for k, v in evaluate(qrels, run, ["mrr@10", "recall@1"]).items()}
    {'mrr@10': 0.75, 'recall@1': 0.5}
    """
    import ir_measures

    measures = {m: ir_measures.parse_measure(_IR_NAMES.get(m.split("@")[0], m.split("@")[0]) + "@" + m.split("@")[1])
                for m in metrics}  # fmt: skip
    # pytrec_eval skips queries absent from the run; count them as zero instead.
    run = {q: (run.get(q) or {"__none__": 0.0}) for q in qrels}
    scores = ir_measures.calc_aggregate(list(measures.values()), qrels, run)
    return {m: float(scores[measures[m]]) for m in metrics}


_IR_NAMES = {"ndcg": "nDCG", "recall": "R", "mrr": "RR", "precision": "P"}


def doc_run(hits: Sequence[ScoredChunk], doc_of: dict[str, str], depth: int = 100) -> dict[str, float]:
    """Chunk ranking -> document ranking: a document takes the rank of its best chunk; scores
    are 1/rank so the order (not the stage's score scale) is what gets evaluated.

    >>> from rag.types import Chunk
    >>> pairs = [("c1", "a.txt"), ("c2", "b.txt"), ("c3", "a.txt")]
    >>> hs = [ScoredChunk(Chunk(i, "x", s, None, 0, 1, "t"), 0.0) for i, s in pairs]
    >>> doc_run(hs, {"a.txt": "A", "b.txt": "B"})
    {'A': 1.0, 'B': 0.5}
    """
    out: dict[str, float] = {}
    for h in hits:
        doc = doc_of.get(h.chunk.source)
        if doc is None or doc in out:
            continue
        out[doc] = 1.0 / (len(out) + 1)
        if len(out) >= depth:
            break
    return out


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50 / p95 / mean of latencies in ms.

    >>> percentiles([1.0, 2.0, 3.0, 4.0])
    {'p50': 2.5, 'p95': 3.85, 'mean': 2.5}
    """
    if not values:
        return {"p50": 0.0, "p95": 0.0, "mean": 0.0}
    a = np.asarray(values, dtype=np.float64)
    return {
        "p50": round(float(np.percentile(a, 50)), 2),
        "p95": round(float(np.percentile(a, 95)), 2),
        "mean": round(float(a.mean()), 2),
    }
