"""First-stage retrieval: dense search over the active collection, with a relevance floor."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rag.interfaces import Embedder, VectorStore
from rag.types import ScoredChunk


class DenseRetriever:
    """Embeds the question and returns the nearest chunks whose cosine similarity is at least
    ``min_score``. ``store`` is a callable so every query reads the collection that is active
    at that moment (a re-index switches it underneath)."""

    def __init__(self, embedder: Embedder, store: Callable[[], VectorStore], min_score: float) -> None:
        self.embedder = embedder
        self.store = store
        self.min_score = min_score

    def retrieve(self, question: str, k: int, doc_ids: Sequence[str] | None = None) -> list[ScoredChunk]:
        hits = self.store().search(self.embedder.embed_query(question), k, doc_ids)
        return [h for h in hits if h.score >= self.min_score]
