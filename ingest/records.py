"""What the write side records and reports: registry meta keys, per-file and re-index results,
and the BM25 tokens stored with each chunk."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from rag.sparse import tokenize, tokens_to_str
from rag.types import Chunk, FileResult

ACTIVE_KEY = "collection"  # registry meta: the live collection generation
EMBEDDER_KEY = "embedding_model"  # registry meta: the model the live collection was embedded with


@dataclass(frozen=True)
class ReindexReport:
    documents: int
    chunks: int
    failed: tuple[FileResult, ...]
    seconds: float
    collection: str


def sparse_tokens(chunks: Sequence[Chunk]) -> dict[str, str]:
    """BM25 tokens of each chunk, computed once here and stored in the registry."""
    return {c.id: tokens_to_str(tokenize(c.text)) for c in chunks}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
