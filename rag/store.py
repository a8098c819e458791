"""Chroma as the vector store. The only module that imports chromadb.

Chunks live in a *generation* collection (``chunks_g1``, ``chunks_g2``, ...). The
registry names the active one, so a full re-index builds a new generation beside
the live one and switches with one registry write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rag.config import Settings
from rag.interfaces import Vectors
from rag.types import Chunk, ScoredChunk

COLLECTION_PREFIX = "chunks_g"
_NO_PAGE = -1  # Chroma metadata values cannot be None
_BATCH = 2000  # stay under Chroma's max batch size


def _meta(c: Chunk) -> dict[str, str | int]:
    return {
        "doc_id": c.doc_id,
        "source": c.source,
        "page": _NO_PAGE if c.page is None else c.page,
        "start": c.start,
        "end": c.end,
    }


def _chunk(cid: str, text: str, m: dict[str, Any]) -> Chunk:
    page = int(m["page"])
    return Chunk(
        id=cid,
        doc_id=str(m["doc_id"]),
        source=str(m["source"]),
        page=None if page == _NO_PAGE else page,
        start=int(m["start"]),
        end=int(m["end"]),
        text=text,
    )


class ChromaStore:
    """Implements :class:`rag.interfaces.VectorStore` over one Chroma collection."""

    def __init__(self, collection: Any) -> None:
        self.collection = collection
        self.name: str = collection.name

    def add(self, chunks: Sequence[Chunk], vectors: Vectors) -> None:
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        for i in range(0, len(chunks), _BATCH):
            part = chunks[i : i + _BATCH]
            self.collection.upsert(
                ids=[c.id for c in part],
                embeddings=np.asarray(vectors[i : i + _BATCH], dtype=np.float32),
                documents=[c.text for c in part],
                metadatas=[_meta(c) for c in part],
            )

    def update_metadata(self, chunks: Sequence[Chunk]) -> None:
        for i in range(0, len(chunks), _BATCH):
            part = chunks[i : i + _BATCH]
            if part:
                self.collection.update(ids=[c.id for c in part], metadatas=[_meta(c) for c in part])

    def delete(self, ids: Sequence[str]) -> None:
        ids = list(ids)
        for i in range(0, len(ids), _BATCH):
            self.collection.delete(ids=ids[i : i + _BATCH])

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        ids = list(ids)
        for i in range(0, len(ids), _BATCH):
            found.update(self.collection.get(ids=ids[i : i + _BATCH], include=[])["ids"])
        return found

    def all_ids(self) -> set[str]:
        return set(self.collection.get(include=[])["ids"])

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        if not ids:
            return []
        r = self.collection.get(ids=list(ids), include=["documents", "metadatas"])
        by_id = {
            cid: _chunk(cid, doc, meta) for cid, doc, meta in zip(r["ids"], r["documents"], r["metadatas"], strict=True)
        }
        return [by_id[i] for i in ids if i in by_id]

    def search(self, vector: Vectors, k: int, doc_ids: Sequence[str] | None = None) -> list[ScoredChunk]:
        n = self.count()
        if n == 0 or k <= 0:
            return []
        where: dict[str, Any] | None = None
        if doc_ids:
            where = {"doc_id": {"$in": list(doc_ids)}}
        r = self.collection.query(
            query_embeddings=np.asarray(vector, dtype=np.float32).reshape(1, -1),
            n_results=min(k, n),
            where=where,
            include=["documents", "metadatas", "distances"],
        )
        return [
            ScoredChunk(_chunk(cid, doc, meta), 1.0 - float(dist))  # cosine distance -> similarity
            for cid, doc, meta, dist in zip(
                r["ids"][0], r["documents"][0], r["metadatas"][0], r["distances"][0], strict=True
            )
        ]

    def count(self) -> int:
        return int(self.collection.count())


class CollectionGone(LookupError):
    """The collection was dropped (a re-index switched to a newer one): re-read the active name."""


class ChromaCatalog:
    """Opens, creates and drops generation collections on one Chroma client."""

    def __init__(self, settings: Settings) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        settings.chroma_dir.mkdir(parents=True, exist_ok=True)
        self._path = str(settings.chroma_dir)
        self._make = lambda: chromadb.PersistentClient(
            path=self._path, settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        )
        self.client = self._make()
        self.seen_version: str | None = None  # the registry version this client is known to reflect

    def reload(self) -> None:
        """Reopen the client so writes made by another process become visible.

        An embedded Chroma keeps each collection's vectors in memory; queries on an open client
        do not see what another process added. Chroma shares one system per path inside a
        process, so drop ours from that cache before opening anew.
        """
        from chromadb.api.shared_system_client import SharedSystemClient

        identifier = getattr(self.client, "_identifier", self._path)
        SharedSystemClient._identifier_to_system.pop(identifier, None)
        SharedSystemClient._identifier_to_refcount.pop(identifier, None)
        self.client = self._make()

    def open(self, name: str, create: bool = True) -> ChromaStore:
        """The collection ``name``; readers pass ``create=False`` so that a collection a re-index
        has just dropped is reported missing (:class:`CollectionGone`) instead of re-created empty."""
        if not create:
            try:
                return ChromaStore(self.client.get_collection(name, embedding_function=None))
            except Exception as e:  # chromadb raises NotFoundError (1.x) or ValueError (older)
                raise CollectionGone(name) from e
        col = self.client.get_or_create_collection(
            name,
            configuration={"hnsw": {"space": "cosine"}},
            embedding_function=None,  # we always pass vectors; never fetch Chroma's default model
        )
        return ChromaStore(col)

    def names(self) -> list[str]:
        return [c.name for c in self.client.list_collections()]

    def drop(self, name: str) -> None:
        if name in self.names():
            self.client.delete_collection(name)


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
