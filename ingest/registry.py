"""What is indexed: document -> file hash -> chunk ids, plus the active collection.

SQLite in WAL mode under RAG_HOME; every change is one transaction, so a crash
leaves either the old or the new state. The registry is the source of truth:
chunks in Chroma that it does not list are leftovers and get removed, and retrieval
serves only the chunks it lists (:meth:`Registry.listed_ids`).

Stored copies are recorded relative to RAG_HOME (``files/<sha256><ext>``), so the whole
folder can be moved; rows written with absolute paths are rewritten by
:meth:`Registry.relocate_stored_paths`.
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
    tokens   TEXT,  -- BM25 tokens, space-separated (rag.sparse_tokens); NULL = not tokenised yet
    PRIMARY KEY (doc_id, chunk_id)
);
CREATE INDEX IF NOT EXISTS chunks_by_id ON chunks(chunk_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


_COLUMNS = "doc_id, source, sha256, mime, pages, chunks, indexed_at, stored_path"


class Registry:
    """``home`` (default: the folder holding the database) is what stored paths are relative to."""

    def __init__(self, path: Path, home: Path | None = None) -> None:
        self.path = path
        self.home = (home or path.parent).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._listed: tuple[str, frozenset[str]] | None = None  # (version, chunk ids listed at it)
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

    # --- stored paths -------------------------------------------------------
    def _to_row(self, stored_path: str) -> str:
        """The path as stored: relative to ``home`` when it lies inside it."""
        p = Path(stored_path)
        if p.is_absolute() and p.is_relative_to(self.home):
            return p.relative_to(self.home).as_posix()
        return stored_path

    def _document(self, row: Sequence[object]) -> IndexedDocument:
        doc = IndexedDocument(*row)  # type: ignore[arg-type]
        p = Path(doc.stored_path)
        if p.is_absolute():
            return doc
        return IndexedDocument(**{**doc.__dict__, "stored_path": str(self.home / p)})

    def relocate_stored_paths(self, files_dir: Path) -> int:
        """Rewrite absolute stored paths (registries written before paths were relative) as
        paths relative to ``home``. A path outside ``home`` (RAG_HOME was moved or copied since)
        is taken to be the copy of the same name in ``files_dir``, where every copy is kept.
        -> how many rows changed (none: one cheap query)"""
        with self._tx() as db:
            rows = db.execute("SELECT doc_id, stored_path FROM documents WHERE stored_path LIKE '/%'").fetchall()
        changed = []
        for doc_id, stored in rows:
            p = Path(stored)
            new = self._to_row(str(p if p.is_relative_to(self.home) else files_dir / p.name))
            if new != stored:
                changed.append((new, doc_id, stored))
        if changed:
            with self._tx() as db:  # only rows still as read: another process may have rewritten them
                db.executemany("UPDATE documents SET stored_path=? WHERE doc_id=? AND stored_path=?", changed)
        return len(changed)

    # --- documents ----------------------------------------------------------
    def get(self, doc_id: str) -> IndexedDocument | None:
        with self._tx() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        return self._document(row) if row else None

    def documents(self) -> list[IndexedDocument]:
        with self._tx() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM documents ORDER BY source").fetchall()
        return [self._document(r) for r in rows]

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

    def listed_ids(self) -> frozenset[str]:
        """Every chunk id the registry lists: what retrieval may serve. Cached per version, so a
        question costs one small query (the version), not a read of every id."""
        cached = self._listed
        if cached is not None and cached[0] == self.version():
            return cached[1]
        with self._tx() as db:  # the version and the ids from one snapshot
            row = db.execute("SELECT value FROM meta WHERE key=?", (VERSION_KEY,)).fetchone()
            ids = frozenset(r[0] for r in db.execute("SELECT chunk_id FROM chunks"))
        self._listed = (row[0] if row else "", ids)
        return ids

    def put_many(
        self,
        items: Sequence[tuple[IndexedDocument, Sequence[str]]],
        meta: dict[str, str],
        tokens: Mapping[str, str] | None = None,
        remove: Sequence[str] = (),
    ) -> str:
        """Insert or replace documents with exactly their chunk lists, remove the documents
        ``remove``, and set meta keys, in one transaction (an ingest batch, or the re-index
        switch-over). ``tokens`` maps chunk id to its BM25 tokens, so the sparse index changes in
        the same transaction as the chunk lists. -> the new index version"""
        with self._tx() as db:
            for doc, ids in items:
                _put(db, doc, ids, tokens or {}, self._to_row(doc.stored_path))
            for doc_id in remove:
                db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
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


def _put(
    db: sqlite3.Connection, doc: IndexedDocument, chunk_ids: Sequence[str], tokens: Mapping[str, str], stored: str
) -> None:
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
            stored,
        ),
    )
    db.executemany(
        "INSERT OR IGNORE INTO chunks(chunk_id, doc_id, tokens) VALUES (?, ?, ?)",
        [(cid, doc.doc_id, tokens.get(cid)) for cid in chunk_ids],
    )
