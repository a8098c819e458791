"""What is indexed: document -> file hash -> chunk ids, plus the active collection.

SQLite in WAL mode under RAG_HOME; every change is one transaction, so a crash
leaves either the old or the new state. The registry is the source of truth:
chunks in Chroma that it does not list are leftovers and get removed.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from rag.types import IndexedDocument

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id      TEXT PRIMARY KEY,
    source      TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    mime        TEXT NOT NULL,
    pages       INTEGER NOT NULL,
    chunks      INTEGER NOT NULL,
    indexed_at  REAL NOT NULL,
    stored_path TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT NOT NULL,
    doc_id   TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    tokens   TEXT,  -- BM25 tokens, space-separated (rag.sparse); NULL = not tokenised yet
    PRIMARY KEY (doc_id, chunk_id)
);
CREATE INDEX IF NOT EXISTS chunks_by_id ON chunks(chunk_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Registry:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        db = sqlite3.connect(path, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)  # executescript commits on its own
            cols = {r[1] for r in db.execute("PRAGMA table_info(chunks)")}
            if "tokens" not in cols:  # registries written before BM25 existed
                db.execute("ALTER TABLE chunks ADD COLUMN tokens TEXT")
                db.commit()
        finally:
            db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        # A connection per transaction: safe across Streamlit's threads and across processes.
        with self._lock:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            try:
                db.execute("PRAGMA foreign_keys=ON")
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            finally:
                db.close()

    # --- meta ---------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        with self._tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # --- documents ----------------------------------------------------------
    def get(self, doc_id: str) -> IndexedDocument | None:
        with self._tx() as db:
            row = db.execute(
                "SELECT doc_id, source, sha256, mime, pages, chunks, indexed_at, stored_path "
                "FROM documents WHERE doc_id=?",
                (doc_id,),
            ).fetchone()
        return IndexedDocument(*row) if row else None

    def documents(self) -> list[IndexedDocument]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT doc_id, source, sha256, mime, pages, chunks, indexed_at, stored_path "
                "FROM documents ORDER BY source"
            ).fetchall()
        return [IndexedDocument(*r) for r in rows]

    def chunk_ids(self, doc_id: str | None = None) -> set[str]:
        with self._tx() as db:
            if doc_id is None:
                rows = db.execute("SELECT chunk_id FROM chunks").fetchall()
            else:
                rows = db.execute("SELECT chunk_id FROM chunks WHERE doc_id=?", (doc_id,)).fetchall()
        return {r[0] for r in rows}

    def version(self) -> str:
        """Changes with every write to the index, from any process (see :func:`_bump`)."""
        return self.get_meta(VERSION_KEY) or ""

    def put_many(
        self,
        items: Sequence[tuple[IndexedDocument, Sequence[str]]],
        meta: dict[str, str],
        tokens: Mapping[str, str] | None = None,
    ) -> str:
        """Insert or replace documents with exactly their chunk lists, and set meta keys, in one
        transaction (an ingest batch, or the re-index switch-over). ``tokens`` maps chunk id to
        its BM25 tokens, so the sparse index changes in the same transaction as the chunk lists.
        -> the new index version"""
        with self._tx() as db:
            for doc, ids in items:
                _put(db, doc, ids, tokens or {})
            for k, v in meta.items():
                db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (k, v))
            return _bump(db)

    def delete(self, doc_id: str) -> str:
        with self._tx() as db:
            db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
            return _bump(db)

    def sparse_rows(self) -> list[tuple[str, str, str | None]]:
        """Every listed chunk as (chunk_id, doc_id, tokens or None), in a stable order."""
        with self._tx() as db:
            return db.execute("SELECT chunk_id, doc_id, tokens FROM chunks ORDER BY rowid").fetchall()

    def stats(self) -> dict[str, int]:
        with self._tx() as db:
            docs, chunks = db.execute("SELECT COUNT(*), COALESCE(SUM(chunks), 0) FROM documents").fetchone()
        return {"documents": int(docs), "chunks": int(chunks)}

    def sha_in_use(self, sha256: str) -> bool:
        with self._tx() as db:
            return db.execute("SELECT 1 FROM documents WHERE sha256=? LIMIT 1", (sha256,)).fetchone() is not None


VERSION_KEY = "index_version"


def _bump(db: sqlite3.Connection) -> str:
    """Stamp a write. Another process holding an embedded Chroma client sees the stamp change
    and reopens its client: Chroma keeps vectors in memory and would not see our writes."""
    version = uuid.uuid4().hex
    db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (VERSION_KEY, version))
    return version


def _put(db: sqlite3.Connection, doc: IndexedDocument, chunk_ids: Sequence[str], tokens: Mapping[str, str]) -> None:
    db.execute("DELETE FROM chunks WHERE doc_id=?", (doc.doc_id,))
    db.execute(
        "INSERT OR REPLACE INTO documents(doc_id, source, sha256, mime, pages, chunks, indexed_at, stored_path) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            doc.doc_id,
            doc.source,
            doc.sha256,
            doc.mime,
            doc.pages,
            len(set(chunk_ids)),
            doc.indexed_at or time.time(),
            doc.stored_path,
        ),
    )
    db.executemany(
        "INSERT OR IGNORE INTO chunks(chunk_id, doc_id, tokens) VALUES (?, ?, ?)",
        [(cid, doc.doc_id, tokens.get(cid)) for cid in chunk_ids],
    )
