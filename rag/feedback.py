"""Pseudo-relevance feedback: the first stage asks again, with the query widened by what its
own best hits say.

Short queries ("breast cancer cells") miss documents that use other words for the same topic.
The top few fused hits are usually on topic, so a second pass can borrow from them:

- **BM25** gets expansion terms, the words that carry the most weight in those hits
  (RM3-style: term frequency share in each hit times inverse document frequency), added to the
  query with a lower weight than its own terms;
- **dense** search gets a Rocchio query vector, the question's embedding moved toward the mean
  of the hits' embeddings.

Both are pure functions here; :class:`rag.retrieve.HybridRetriever` runs the second pass. Chosen
and measured on NFCorpus dev, then test once (docs/decisions/bench-feedback-grid.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt


def expansion_terms(
    query_tokens: Sequence[str],
    feedback_tokens: Sequence[Sequence[str]],
    idf: Mapping[str, float],
    n_terms: int,
) -> list[tuple[str, float]]:
    """The ``n_terms`` heaviest new terms of the feedback texts -> [(term, weight)], heaviest
    first, weights scaled so the heaviest is 1. A term's weight is the sum over feedback texts
    of (its count / the text's length) x its idf; the query's own terms and terms without an
    idf (unknown to the index) are left out.

    >>> idf = {"statin": 2.0, "cholesterol": 1.5, "heart": 1.0, "ldl": 3.0}
    >>> fb = [["statin", "ldl", "cholesterol", "ldl"], ["statin", "heart", "cholesterol"]]
    >>> [(t, round(w, 3)) for t, w in expansion_terms(["statin"], fb, idf, 2)]
    [('ldl', 1.0), ('cholesterol', 0.583)]
    >>> expansion_terms(["statin"], [[]], idf, 5)
    []
    """
    weights: dict[str, float] = {}
    for tokens in feedback_tokens:
        if not tokens:
            continue
        for term, count in Counter(tokens).items():
            if term in idf:
                weights[term] = weights.get(term, 0.0) + count / len(tokens) * idf[term]
    for term in query_tokens:
        weights.pop(term, None)
    ranked = sorted(weights.items(), key=lambda tw: -tw[1])  # stable: ties keep first-seen order
    top = [(t, w) for t, w in ranked[:n_terms] if w > 0]
    if not top:
        return []
    best = top[0][1]
    return [(t, w / best) for t, w in top]


def rocchio(query: npt.ArrayLike, feedback: npt.ArrayLike, weight: float) -> npt.NDArray[np.float32]:
    """The query vector moved toward the mean of the feedback vectors, unit length, shape (1, dim).
    ``weight`` 0 keeps the query's direction; 1 gives the mean as much say as the query.

    >>> [round(float(x), 3) for x in rocchio([[1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]], 1.0)[0]]
    [0.707, 0.707]
    >>> rocchio([[2.0, 0.0]], [[0.0, 1.0]], 0.0).tolist()
    [[1.0, 0.0]]
    """
    q = np.asarray(query, dtype=np.float32).reshape(1, -1)
    q = q / max(float(np.linalg.norm(q)), 1e-12)
    fb = np.asarray(feedback, dtype=np.float32).reshape(-1, q.shape[1])
    if weight > 0 and len(fb):
        fb = fb / np.maximum(np.linalg.norm(fb, axis=1, keepdims=True), 1e-12)
        q = q + weight * fb.mean(axis=0, keepdims=True)
    return (q / max(float(np.linalg.norm(q)), 1e-12)).astype(np.float32)
