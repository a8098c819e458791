"""Small Protocols in front of the heavy engines, so tests can swap in fakes (tests/fakes.py)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from rag.types import Chunk, ScoredChunk

Vectors = npt.NDArray[np.float32]  # shape (n, dim), rows L2-normalised


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
