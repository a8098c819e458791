"""First-stage retrieval: dense search over the active collection, with a relevance floor."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from rag.interfaces import Embedder, VectorStore
from rag.store import CollectionGone
from rag.types import ScoredChunk

RETRIES = 5


class DenseRetriever:
    """Embeds the question and returns the nearest chunks whose cosine similarity is at least
    ``min_score``. ``store`` is a callable so every query reads the collection that is active
    at that moment (a re-index switches it underneath)."""

    def __init__(self, embedder: Embedder, store: Callable[[], VectorStore], min_score: float) -> None:
        self.embedder = embedder
        self.store = store
        self.min_score = min_score

    def retrieve(self, question: str, k: int, doc_ids: Sequence[str] | None = None) -> list[ScoredChunk]:
        vector = self.embedder.embed_query(question)
        for attempt in range(RETRIES):
            try:
                hits = self.store().search(vector, k, doc_ids)
                break
            except CollectionGone:
                # A re-index may drop the collection between reading its name and querying it;
                # the registry already names the new one, so look again.
                if attempt == RETRIES - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        return [h for h in hits if h.score >= self.min_score]
