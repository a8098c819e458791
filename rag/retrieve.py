"""First-stage retrieval: dense (Chroma) and sparse (BM25) candidates, fused with RRF.

    question -> dense top-N (cosine >= floor)  \\
             -> BM25 top-N                      -> reciprocal rank fusion -> candidates

The dense floor is also the "is anything here at all?" gate: when no chunk reaches
``min_score`` the retriever returns nothing and the app abstains without asking the model,
even if BM25 matched a stray word.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Literal, Protocol, TypeVar

from rag.fusion import reciprocal_rank_fusion
from rag.interfaces import Embedder, VectorStore
from rag.store import CollectionGone
from rag.types import ScoredChunk

RETRIES = 5
Mode = Literal["dense", "bm25", "hybrid"]
T = TypeVar("T")


class Sparse(Protocol):
    def search(self, query: str, k: int, doc_ids: Sequence[str] | None = None) -> list[tuple[str, float]]: ...


def _with_retry(call: Callable[[], T]) -> T:
    for attempt in range(RETRIES):
        try:
            return call()
        except CollectionGone:
            # A re-index may drop the collection between reading its name and querying it;
            # the registry already names the new one, so look again.
            if attempt == RETRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


class DenseRetriever:
    """Embeds the question and returns the nearest chunks whose cosine similarity is at least
    ``min_score``. ``store`` is a callable so every query reads the collection that is active
    at that moment (a re-index switches it underneath)."""

    def __init__(self, embedder: Embedder, store: Callable[[], VectorStore], min_score: float) -> None:
        self.embedder = embedder
        self.store = store
        self.min_score = min_score

    def retrieve(
        self, question: str, k: int, doc_ids: Sequence[str] | None = None, timings: dict[str, float] | None = None
    ) -> list[ScoredChunk]:
        t0 = time.perf_counter()
        vector = self.embedder.embed_query(question)
        hits = _with_retry(lambda: self.store().search(vector, k, doc_ids))
        if timings is not None:
            timings["dense"] = (time.perf_counter() - t0) * 1000
        return [h for h in hits if h.score >= self.min_score]


class HybridRetriever:
    """Dense + BM25 candidates fused by weighted reciprocal rank fusion.

    ``mode`` picks the first stage: "hybrid" (both), "dense" or "bm25" alone. Fused scores
    are RRF scores (about 1/60 at best); the dense cosine floor gates the whole result.
    """

    def __init__(
        self,
        dense: DenseRetriever,
        sparse: Sparse,
        mode: Mode = "hybrid",
        rrf_k: float = 60.0,
        weights: tuple[float, float] = (1.0, 1.0),  # (dense, bm25)
    ) -> None:
        self.dense = dense
        self.sparse = sparse
        self.mode = mode
        self.rrf_k = rrf_k
        self.weights = weights

    def bm25(
        self, question: str, k: int, doc_ids: Sequence[str] | None = None, timings: dict[str, float] | None = None
    ) -> list[ScoredChunk]:
        t0 = time.perf_counter()
        hits = self.sparse.search(question, k, doc_ids)
        chunks = {c.id: c for c in _with_retry(lambda: self.dense.store().get([cid for cid, _ in hits]))}
        if timings is not None:
            timings["bm25"] = (time.perf_counter() - t0) * 1000
        return [ScoredChunk(chunks[cid], s) for cid, s in hits if cid in chunks]

    def retrieve(
        self, question: str, k: int, doc_ids: Sequence[str] | None = None, timings: dict[str, float] | None = None
    ) -> list[ScoredChunk]:
        if self.mode == "bm25":
            return self.bm25(question, k, doc_ids, timings)
        dense = self.dense.retrieve(question, k, doc_ids, timings)
        if self.mode == "dense" or not dense:  # nothing semantically close: abstain, whatever BM25 says
            return dense
        sparse = self.bm25(question, k, doc_ids, timings)
        return self.fuse(dense, sparse, k, timings)

    def fuse(
        self,
        dense: Sequence[ScoredChunk],
        sparse: Sequence[ScoredChunk],
        k: int,
        timings: dict[str, float] | None = None,
    ) -> list[ScoredChunk]:
        """RRF of the two lists -> the top ``k``, scored by their fused score."""
        t0 = time.perf_counter()
        by_id = {h.chunk.id: h.chunk for h in sparse} | {h.chunk.id: h.chunk for h in dense}
        fused = reciprocal_rank_fusion(
            [[h.chunk.id for h in dense], [h.chunk.id for h in sparse]], weights=self.weights, k=self.rrf_k
        )
        if timings is not None:
            timings["fusion"] = (time.perf_counter() - t0) * 1000
        return [ScoredChunk(by_id[cid], score) for cid, score in fused[:k]]
