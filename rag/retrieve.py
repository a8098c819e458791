"""First-stage retrieval: dense (Chroma) and sparse (BM25) candidates, fused with RRF, then
asked again with pseudo-relevance feedback from the best fused hits.

    question -> dense top-N (cosine >= floor)  \\
             -> BM25 top-N                      -> reciprocal rank fusion -> top F hits
    top F    -> dense top-N for the Rocchio vector (question moved toward the F hits) \\
             -> BM25 top-N for the question + the F hits' heaviest terms            \\
    first-stage dense + BM25 lists (weight ``keep_first_pass``)                     -> RRF -> candidates

The dense floor is also the "is anything here at all?" gate: when no chunk reaches
``min_score`` the retriever returns nothing and the app abstains without asking the model,
even if BM25 matched a stray word. The feedback pass runs only after that gate has passed.

Only chunks the registry lists are served (``listed``): Chroma may hold others (written before
a failed or interrupted write, or by anyone who can reach a shared Chroma server), and those are
never answered from. Dense search asks for a few more hits than needed and looks further when
unlisted ones push listed ones out, so the number of hits does not shrink.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from rag.feedback import rocchio
from rag.fusion import reciprocal_rank_fusion
from rag.interfaces import Embedder, Vectors, VectorStore
from rag.store import CollectionGone
from rag.types import RetrievalTrace, ScoredChunk

RETRIES = 5
# Hits asked of Chroma beyond ``k``, so a few unlisted chunks (leftovers awaiting reconcile) do not
# shorten the list; when more than this many are in the way, the search is repeated with twice as
# many (rare: leftovers are swept after every failed write and at start-up).
OVERFETCH = 8
Mode = Literal["dense", "bm25", "hybrid"]
T = TypeVar("T")


class Sparse(Protocol):
    def search(
        self,
        query: str,
        k: int,
        doc_ids: Sequence[str] | None = None,
        feedback: Sequence[str] = (),
        n_terms: int = 10,
        weight: float = 0.5,
    ) -> list[tuple[str, float]]: ...


@dataclass(frozen=True)
class Feedback:
    """Pseudo-relevance feedback settings (``chunks`` 0 = off); see :mod:`rag.feedback`."""

    chunks: int = 0
    terms: int = 10
    bm25_weight: float = 0.5
    dense_weight: float = 1.0
    keep_first_pass: float = 0.5


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
    at that moment (a re-index switches it underneath). ``listed`` returns the chunk ids that
    may be served (the registry's); None serves whatever the store holds."""

    def __init__(
        self,
        embedder: Embedder,
        store: Callable[[], VectorStore],
        min_score: float,
        listed: Callable[[], Collection[str]] | None = None,
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.min_score = min_score
        self.listed = listed

    def search(self, vector: Vectors, k: int, doc_ids: Sequence[str] | None = None) -> list[ScoredChunk]:
        """The ``k`` nearest listed chunks to ``vector``, best first."""
        return _with_retry(lambda: self._search_listed(vector, k, doc_ids))

    def _search_listed(self, vector: Vectors, k: int, doc_ids: Sequence[str] | None) -> list[ScoredChunk]:
        store = self.store()
        if self.listed is None:
            return store.search(vector, k, doc_ids)
        if k <= 0:
            return []
        listed = self.listed()
        want = k + OVERFETCH
        while True:
            hits = store.search(vector, want, doc_ids)
            kept = [h for h in hits if h.chunk.id in listed]
            if len(kept) >= k or len(hits) < want:  # enough, or nothing further to find
                return kept[:k]
            want *= 2

    def retrieve(
        self, question: str, k: int, doc_ids: Sequence[str] | None = None, timings: dict[str, float] | None = None
    ) -> list[ScoredChunk]:
        return self.retrieve_with_vector(question, k, doc_ids, timings)[0]

    def retrieve_with_vector(
        self,
        question: str,
        k: int,
        doc_ids: Sequence[str] | None = None,
        timings: dict[str, float] | None = None,
        floor: bool = True,
    ) -> tuple[list[ScoredChunk], Vectors]:
        """:meth:`retrieve`, plus the question's embedding (the feedback pass reuses it).
        ``floor=False`` keeps the hits under ``min_score`` (evaluation ranks everything)."""
        t0 = time.perf_counter()
        vector = self.embedder.embed_query(question)
        hits = self.search(vector, k, doc_ids)
        if timings is not None:
            timings["dense"] = (time.perf_counter() - t0) * 1000
        return [h for h in hits if h.score >= self.min_score or not floor], vector

    def feedback(
        self, vector: Vectors, feedback_ids: Sequence[str], weight: float, k: int, doc_ids: Sequence[str] | None = None
    ) -> list[ScoredChunk]:
        """Nearest chunks to the question's Rocchio vector (``vector`` moved toward the stored
        vectors of ``feedback_ids``). No floor: this runs only after the question passed it."""
        fb = _with_retry(lambda: self.store().vectors(feedback_ids))
        moved = rocchio(vector, fb, weight) if len(fb) else vector
        return self.search(moved, k, doc_ids)


class HybridRetriever:
    """Dense + BM25 candidates fused by weighted reciprocal rank fusion.

    ``mode`` picks the first stage: "hybrid" (both), "dense" or "bm25" alone. Fused scores
    are RRF scores (about 1/60 at best); the dense cosine floor gates the whole result.
    In hybrid mode, ``feedback`` (chunks > 0) asks both halves again from the best fused hits.
    """

    def __init__(
        self,
        dense: DenseRetriever,
        sparse: Sparse,
        mode: Mode = "hybrid",
        rrf_k: float = 60.0,
        weights: tuple[float, float] = (1.0, 1.0),  # (dense, bm25)
        feedback: Feedback = Feedback(),
    ) -> None:
        self.dense = dense
        self.sparse = sparse
        self.mode = mode
        self.rrf_k = rrf_k
        self.weights = weights
        self.feedback = feedback

    def bm25(
        self, question: str, k: int, doc_ids: Sequence[str] | None = None, timings: dict[str, float] | None = None
    ) -> list[ScoredChunk]:
        t0 = time.perf_counter()
        out = self._chunks(self.sparse.search(question, k, doc_ids))
        if timings is not None:
            timings["bm25"] = (time.perf_counter() - t0) * 1000
        return out

    def _chunks(self, hits: Sequence[tuple[str, float]]) -> list[ScoredChunk]:
        """Sparse hits [(chunk id, score)] -> their chunks from the store, same order and scores
        (BM25 is built from the registry, so its hits are listed; checked again all the same)."""
        if self.dense.listed is not None:
            listed = self.dense.listed()
            hits = [(cid, s) for cid, s in hits if cid in listed]
        chunks = {c.id: c for c in _with_retry(lambda: self.dense.store().get([cid for cid, _ in hits]))}
        return [ScoredChunk(chunks[cid], s) for cid, s in hits if cid in chunks]

    def retrieve(
        self, question: str, k: int, doc_ids: Sequence[str] | None = None, timings: dict[str, float] | None = None
    ) -> list[ScoredChunk]:
        trace = self.trace(question, k, doc_ids)
        if timings is not None:
            timings.update(trace.timings)
        return trace.first

    def trace(
        self,
        question: str,
        k: int,
        doc_ids: Sequence[str] | None = None,
        floor: bool = True,
        mode: Mode | None = None,
    ) -> RetrievalTrace:
        """The first stage, each list kept: dense (under the relevance floor dropped unless
        ``floor=False``), BM25, and their fusion with the feedback pass. When no dense hit is
        close enough, the first stage returns nothing (the app abstains, whatever BM25 says).
        ``mode`` overrides the retriever's own (evaluation runs every list in hybrid mode)."""
        mode = mode or self.mode
        tr = RetrievalTrace(question)
        if mode == "bm25":
            tr.bm25 = tr.first = self.bm25(question, k, doc_ids, tr.timings)
            return tr
        tr.dense, vector = self.dense.retrieve_with_vector(question, k, doc_ids, tr.timings, floor)
        if mode == "dense" or not tr.dense:
            tr.first = tr.dense
            return tr
        tr.bm25 = self.bm25(question, k, doc_ids, tr.timings)
        tr.hybrid = tr.first = self.refine(question, vector, tr.dense, tr.bm25, k, doc_ids, tr.timings)
        return tr

    def refine(
        self,
        question: str,
        vector: Vectors,
        dense: Sequence[ScoredChunk],
        sparse: Sequence[ScoredChunk],
        k: int,
        doc_ids: Sequence[str] | None = None,
        timings: dict[str, float] | None = None,
    ) -> list[ScoredChunk]:
        """Fuse the first-stage lists, then the feedback pass: the top ``feedback.chunks`` fused
        hits widen both queries (BM25 terms, dense Rocchio vector; :mod:`rag.feedback`), and the
        two new lists are fused with the first two, which keep ``feedback.keep_first_pass`` of
        their weight. ``vector`` is the question's embedding. Plain :meth:`fuse` when feedback is off.

        Measured with exact search on NFCorpus dev (324 queries): hybrid nDCG@10 0.329 -> 0.348,
        while SQuAD recall@1 of the gold paragraph moved 0.677 -> 0.673 (0.587 with the feedback
        lists alone; docs/decisions/bench-feedback-grid.md)."""
        fused = self.fuse(dense, sparse, k, timings)
        fb = self.feedback
        if fb.chunks <= 0 or not fused:
            return fused
        t0 = time.perf_counter()
        top = [h.chunk for h in fused[: fb.chunks]]
        dense2 = self.dense.feedback(vector, [c.id for c in top], fb.dense_weight, k, doc_ids)
        sparse2 = self._chunks(
            self.sparse.search(question, k, doc_ids, [c.text for c in top], fb.terms, fb.bm25_weight)
        )
        wd, wb = self.weights
        keep = fb.keep_first_pass
        out = _fuse_lists([dense2, sparse2, dense, sparse], [wd, wb, keep * wd, keep * wb], self.rrf_k, k)
        if timings is not None:
            timings["feedback"] = (time.perf_counter() - t0) * 1000
        return out

    def fuse(
        self,
        dense: Sequence[ScoredChunk],
        sparse: Sequence[ScoredChunk],
        k: int,
        timings: dict[str, float] | None = None,
    ) -> list[ScoredChunk]:
        """RRF of the two lists -> the top ``k``, scored by their fused score."""
        t0 = time.perf_counter()
        fused = _fuse_lists([dense, sparse], self.weights, self.rrf_k, k)
        if timings is not None:
            timings["fusion"] = (time.perf_counter() - t0) * 1000
        return fused


def _fuse_lists(
    lists: Sequence[Sequence[ScoredChunk]], weights: Sequence[float], rrf_k: float, k: int
) -> list[ScoredChunk]:
    """RRF of chunk lists -> the top ``k``, scored by their fused score."""
    by_id = {h.chunk.id: h.chunk for hits in reversed(lists) for h in hits}
    fused = reciprocal_rank_fusion([[h.chunk.id for h in hits] for hits in lists], weights=weights, k=rrf_k)
    return [ScoredChunk(by_id[cid], score) for cid, score in fused[:k]]
