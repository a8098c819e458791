"""Chroma as the vector store. The only module that imports chromadb.

Chunks live in a *generation* collection (``chunks_g1``, ``chunks_g2``, ...). The
registry names the active one, so a full re-index builds a new generation beside
the live one and switches with one registry write.

Two modes (``RAG_CHROMA_MODE``): *embedded* keeps Chroma inside this process on
``<home>/chroma``; *server* talks HTTP to a shared ``chroma run`` server, so several app
replicas and the CLI see one index.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from rag.config import Settings
from rag.interfaces import CollectionGone, Vectors
from rag.types import Chunk, ScoredChunk

_NO_PAGE = -1  # Chroma metadata values cannot be None
_BATCH = 2000  # stay under Chroma's max batch size
PROBE_TIMEOUT_S = 5.0  # how long the start-up check waits for a Chroma server


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

    def vectors(self, ids: Sequence[str]) -> Vectors:
        """Stored embeddings of ``ids`` that exist, in that order (pseudo-relevance feedback)."""
        if not ids:
            return np.zeros((0, 0), dtype=np.float32)
        r = self.collection.get(ids=list(ids), include=["embeddings"])
        by_id = dict(zip(r["ids"], r["embeddings"], strict=True))
        return np.asarray([by_id[i] for i in ids if i in by_id], dtype=np.float32)

    def search(self, vector: Vectors, k: int, doc_ids: Sequence[str] | None = None) -> list[ScoredChunk]:
        from chromadb.errors import NotFoundError

        where: dict[str, Any] | None = None
        if doc_ids:
            where = {"doc_id": {"$in": list(doc_ids)}}
        try:
            n = self.count()
            if n == 0 or k <= 0:
                return []
            r = self.collection.query(
                query_embeddings=np.asarray(vector, dtype=np.float32).reshape(1, -1),
                n_results=min(k, n),
                where=where,
                include=["documents", "metadatas", "distances"],
            )
        except NotFoundError as e:  # a re-index dropped this collection after we opened it
            raise CollectionGone(self.name) from e
        return [
            ScoredChunk(_chunk(cid, doc, meta), 1.0 - float(dist))  # cosine distance -> similarity
            for cid, doc, meta, dist in zip(
                r["ids"][0], r["documents"][0], r["metadatas"][0], r["distances"][0], strict=True
            )
        ]

    def count(self) -> int:
        return int(self.collection.count())


class StoreUnavailable(RuntimeError):
    """The Chroma server cannot be reached or refuses us (server mode); the message says how to fix it."""


def _server_address(settings: Settings) -> str:
    scheme = "https" if settings.chroma_ssl else "http"
    return f"{scheme}://{settings.chroma_host}:{settings.chroma_port}"


def _unavailable(settings: Settings, problem: str) -> StoreUnavailable:
    return StoreUnavailable(
        f"Chroma server at {settings.chroma_host}:{settings.chroma_port} {problem}. "
        f"Start one with `chroma run --path DIR --host {settings.chroma_host} --port {settings.chroma_port}` "
        "(or point RAG_CHROMA_HOST/RAG_CHROMA_PORT at the running one), "
        "or set RAG_CHROMA_MODE=embedded to keep the index inside this process."
    )


def server_headers(settings: Settings) -> dict[str, str]:
    """The auth header sent to a Chroma server, if a token is configured.

    >>> from pydantic import SecretStr
    >>> server_headers(Settings(chroma_token=SecretStr("s3cret"), _env_file=None))
    {'Authorization': 'Bearer s3cret'}
    """
    if settings.chroma_token is None:
        return {}
    token = settings.chroma_token.get_secret_value()
    if settings.chroma_token_header == "Authorization":
        return {"Authorization": f"Bearer {token}"}
    return {"X-Chroma-Token": token}


def _connect_server(settings: Settings) -> Any:
    """An HTTP client on the configured Chroma server, or :class:`StoreUnavailable`.

    A heartbeat with a short timeout comes first: chromadb's own client sets no timeout at all (a
    silent host stalls it for minutes) and says only "Are you sure it is running?" when nothing listens.
    """
    import chromadb
    import httpx
    from chromadb.config import Settings as ChromaSettings

    headers = server_headers(settings)
    try:
        r = httpx.get(
            f"{_server_address(settings)}/api/v2/heartbeat",
            headers=headers,
            timeout=httpx.Timeout(PROBE_TIMEOUT_S * 2, connect=PROBE_TIMEOUT_S),
        )
    except httpx.HTTPError as e:
        raise _unavailable(settings, f"is unreachable ({type(e).__name__}: {e})") from e
    if r.status_code in (401, 403):
        raise _unavailable(settings, f"refused the credentials (HTTP {r.status_code}); check RAG_CHROMA_TOKEN")
    if r.status_code != 200:
        raise _unavailable(settings, f"answered the heartbeat with HTTP {r.status_code}; is it a Chroma server?")
    try:
        return chromadb.HttpClient(
            host=settings.chroma_host,
            port=settings.chroma_port,
            ssl=settings.chroma_ssl,
            headers=headers or None,
            settings=ChromaSettings(anonymized_telemetry=False),
            tenant=settings.chroma_tenant,
            database=settings.chroma_database,
        )
    except Exception as e:  # ValueError (cannot connect), NotFoundError (tenant/database), auth errors
        raise _unavailable(
            settings,
            f"could not be opened ({type(e).__name__}: {e}); check RAG_CHROMA_TOKEN, "
            f"RAG_CHROMA_TENANT ({settings.chroma_tenant!r}) and RAG_CHROMA_DATABASE ({settings.chroma_database!r})",
        ) from e


class ChromaCatalog:
    """Opens, creates and drops generation collections on one Chroma client."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server = settings.chroma_mode == "server"
        self.seen_version: str | None = None  # the registry version this client is known to reflect
        if self.server:
            self.client = _connect_server(settings)
            return

        import chromadb
        from chromadb.config import Settings as ChromaSettings

        settings.chroma_dir.mkdir(parents=True, exist_ok=True)
        self._path = str(settings.chroma_dir)
        self._make = lambda: chromadb.PersistentClient(
            path=self._path, settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        )
        self.client = self._make()

    def reload(self) -> None:
        """Reopen the client so writes made by another process become visible.

        An embedded Chroma keeps each collection's vectors in memory; queries on an open client
        do not see what another process added. Chroma shares one system per path inside a
        process, so drop ours from that cache before opening anew.

        A Chroma server is shared: every client sees every write, so there is nothing to do.
        """
        if self.server:
            return
        from rag.internals import forget_shared_chroma_system

        forget_shared_chroma_system(self.client, self._path)
        self.client = self._make()

    @contextmanager
    def _reachable(self) -> Iterator[None]:
        """In server mode, turn a lost connection into :class:`StoreUnavailable`."""
        if not self.server:
            yield
            return
        import httpx

        try:
            yield
        except httpx.TransportError as e:
            raise _unavailable(self.settings, f"is unreachable ({type(e).__name__}: {e})") from e

    def open(self, name: str, create: bool = True) -> ChromaStore:
        """The collection ``name``; readers pass ``create=False`` so that a collection a re-index
        has just dropped is reported missing (:class:`CollectionGone`) instead of re-created empty."""
        with self._reachable():
            if not create:
                try:
                    return ChromaStore(self.client.get_collection(name, embedding_function=None))
                except Exception as e:  # chromadb raises NotFoundError (1.x) or ValueError (older)
                    if self.server and _is_transport_error(e):
                        raise  # the server is gone, not the collection
                    raise CollectionGone(name) from e
            col = self.client.get_or_create_collection(
                name,
                configuration={"hnsw": {"space": "cosine"}},
                embedding_function=None,  # we always pass vectors; never fetch Chroma's default model
            )
            return ChromaStore(col)

    def names(self) -> list[str]:
        with self._reachable():
            return [c.name for c in self.client.list_collections()]

    def drop(self, name: str) -> None:
        if name in self.names():
            with self._reachable():
                self.client.delete_collection(name)


def _is_transport_error(e: Exception) -> bool:
    import httpx

    return isinstance(e, httpx.TransportError)
