"""Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009): pure functions.

Each ranked list gives an item ``weight / (k + rank)`` (rank from 1); an item's fused score is
the sum over the lists it appears in. Scores of different retrievers (BM25's unbounded
values, cosine similarities) never have to be put on one scale.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

T = TypeVar("T", bound=Hashable)


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[T]], weights: Sequence[float] | None = None, k: float = 60.0
) -> list[tuple[T, float]]:
    """Fuse ranked lists (best first) -> [(item, fused score)], best first; ties keep the order
    in which items were first seen (earlier lists first).

    >>> bm25 = ["a", "b", "c"]
    >>> dense = ["c", "a", "d"]
    >>> [(x, round(s, 4)) for x, s in reciprocal_rank_fusion([bm25, dense], k=1)]
    [('a', 0.8333), ('c', 0.75), ('b', 0.3333), ('d', 0.25)]
    >>> [x for x, _ in reciprocal_rank_fusion([bm25, dense], weights=[0.0, 1.0], k=1)]
    ['c', 'a', 'd', 'b']
    """
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(rankings)} rankings but {len(weights)} weights")
    if k < 0:
        raise ValueError("k must be >= 0")
    scores: dict[T, float] = {}
    for ranking, w in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + w / (k + rank)
    order = {item: i for i, item in enumerate(scores)}
    return sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))
