"""Small Protocols in front of the heavy engines, so tests can swap in fakes (tests/fakes.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from rag.types import Chunk, ScoredChunk

Vectors = npt.NDArray[np.float32]  # shape (n, dim), rows L2-normalised
Progress = Callable[[int, int, str], None]  # (done, total, message) of a long write
SparseTokenizer = Callable[[str], str]  # a text -> its BM25 tokens, space-separated as stored


class CollectionGone(LookupError):
    """The collection was dropped (a re-index switched to a newer one): re-read the active name."""


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    def embed_documents(self, texts: Sequence[str]) -> Vectors: ...

    def embed_query(self, text: str) -> Vectors: ...  # shape (1, dim)

    def count_tokens(self, text: str) -> int: ...


@runtime_checkable
class VectorStore(Protocol):
    """Chunks with their vectors. Scores are cosine similarities in [-1, 1]."""

    def add(self, chunks: Sequence[Chunk], vectors: Vectors) -> None: ...

    def update_metadata(self, chunks: Sequence[Chunk]) -> None: ...

    def delete(self, ids: Sequence[str]) -> None: ...

    def existing_ids(self, ids: Sequence[str]) -> set[str]: ...

    def search(self, vector: Vectors, k: int, doc_ids: Sequence[str] | None = None) -> list[ScoredChunk]: ...

    def vectors(self, ids: Sequence[str]) -> Vectors: ...  # shape (found, dim), in the order of ``ids``

    def get(self, ids: Sequence[str]) -> list[Chunk]: ...

    def count(self) -> int: ...


@runtime_checkable
class Collection(VectorStore, Protocol):
    """One named collection of a :class:`Catalog`: a generation of the index."""

    name: str

    def all_ids(self) -> set[str]: ...


@runtime_checkable
class Catalog(Protocol):
    """Opens, creates and drops named collections (rag.store.ChromaCatalog); what the write side
    (ingest.pipeline.Indexer) needs of the vector database."""

    server: bool  # the collections live on a server's disk, not under RAG_HOME
    seen_version: str | None  # the registry version this client is known to reflect

    def open(self, name: str, create: bool = True) -> Collection:
        """``create=False``: raise :class:`CollectionGone` instead of creating it."""
        ...

    def names(self) -> list[str]: ...

    def drop(self, name: str) -> None: ...

    def reload(self) -> None:
        """Make writes by other processes visible."""
        ...


@runtime_checkable
class SparseRefresher(Protocol):
    """The keyword (BM25) index, told that the index changed (rag.sparse_search.SparseSearcher)."""

    def refresh_soon(self) -> None: ...


@runtime_checkable
class Reranker(Protocol):
    """Re-scores (question, passage) pairs; higher is more relevant."""

    name: str

    def score(self, question: str, passages: Sequence[str]) -> list[float]: ...


@runtime_checkable
class Generator(Protocol):
    name: str

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        """Yield the answer text piece by piece for chat ``messages`` (role/content dicts)."""
        ...


@runtime_checkable
class PreparesPrompts(Protocol):
    """A generator that can get ready for prompts like ``messages`` before the first question
    (the in-process model prefills the start that every prompt shares); optional."""

    def prepare(self, messages: list[dict[str, str]]) -> None: ...
