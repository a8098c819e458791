"""What the write side records and reports: registry meta keys, collection generation names,
per-file and re-index results, and the BM25 tokens stored with each chunk."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from rag.interfaces import SparseTokenizer
from rag.types import Chunk, FileResult, ReindexReport

__all__ = [
    "ACTIVE_KEY",
    "COLLECTION_PREFIX",
    "EMBEDDER_KEY",
    "FileResult",
    "ReindexReport",
    "generation_name",
    "generation_number",
    "sha256_bytes",
    "sparse_tokens",
]

ACTIVE_KEY = "collection"  # registry meta: the live collection generation
EMBEDDER_KEY = "embedding_model"  # registry meta: the model the live collection was embedded with
COLLECTION_PREFIX = "chunks_g"  # chunks live in generation collections chunks_g1, chunks_g2, ...


def generation_name(n: int) -> str:
    """Example:

    >>> generation_name(3)
    'chunks_g3'
    """
    return f"{COLLECTION_PREFIX}{n}"


def generation_number(name: str) -> int:
    """Example:

    >>> generation_number('chunks_g12')
    12
    """
    return int(name.removeprefix(COLLECTION_PREFIX))


def sparse_tokens(chunks: Sequence[Chunk], tokenize: SparseTokenizer) -> dict[str, str]:
    """BM25 tokens of each chunk, computed once here and stored in the registry."""
    return {c.id: tokenize(c.text) for c in chunks}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
