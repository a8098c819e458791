"""load -> chunk -> embed -> store, one file at a time, with a per-file result.

Write order keeps the index answerable at every instant:
new chunks are added to Chroma first, then the registry switches to the new
chunk list in one transaction, then stale chunks are deleted. A crash anywhere
leaves the old version answerable; leftovers are swept by :meth:`Indexer.reconcile`.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingest.chunking import chunk_document, doc_id_for, make_splitter
from ingest.loaders import SUPPORTED_SUFFIXES, LoadError, check_size, load_bytes, load_path
from ingest.registry import Registry
from rag.config import Settings
from rag.interfaces import Embedder
from rag.store import (
    COLLECTION_PREFIX,
    ChromaCatalog,
    ChromaStore,
    CollectionGone,
    generation_name,
    generation_number,
)
from rag.types import Chunk, FileResult, IndexedDocument, LoadedDocument

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]  # (done, total, message)
ACTIVE_KEY = "collection"
EMBEDDER_KEY = "embedding_model"


@dataclass(frozen=True)
class ReindexReport:
    documents: int
    chunks: int
    failed: tuple[FileResult, ...]
    seconds: float
    collection: str


def iter_files(paths: Iterable[Path], skipped: list[Path] | None = None) -> Iterator[tuple[Path, bool]]:
    """Expand files and folders (recursively, sorted, hidden entries skipped).

    Yields ``(path, explicit)``: explicit files are reported even when unsupported;
    unsupported files found inside folders are passed over (and appended to ``skipped``).
    """
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p)
                if not f.is_file() or any(part.startswith(".") for part in rel.parts):
                    continue
                if f.suffix.lower() in SUPPORTED_SUFFIXES:
                    yield f, False
                elif skipped is not None:
                    skipped.append(f)
        else:
            yield p, True


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Indexer:
    """Owns the write side of the index: ingest, delete, re-index, reconcile."""

    def __init__(self, settings: Settings, embedder: Embedder, catalog: ChromaCatalog, registry: Registry) -> None:
        self.settings = settings
        self.embedder = embedder
        self.catalog = catalog
        self.registry = registry
        self.splitter = make_splitter(embedder.count_tokens, settings.chunk_tokens, settings.chunk_overlap_tokens)
        settings.files_dir.mkdir(parents=True, exist_ok=True)
        if self.registry.get_meta(ACTIVE_KEY) is None:
            self.registry.set_meta(ACTIVE_KEY, generation_name(1))
            self.registry.set_meta(EMBEDDER_KEY, embedder.name)

    # --- shared helpers -----------------------------------------------------
    def _sync(self) -> None:
        """Reopen Chroma if another process wrote since this one last looked."""
        version = self.registry.version()
        if self.catalog.seen_version is None:
            self.catalog.seen_version = version
        elif version != self.catalog.seen_version:
            self.catalog.reload()
            self.catalog.seen_version = version

    def _wrote(self, version: str) -> None:
        self.catalog.seen_version = version  # our own write is already visible to our client

    def active_store(self) -> ChromaStore:
        """The live collection, for writers (created if it does not exist yet)."""
        self._sync()
        return self.catalog.open(self.registry.get_meta(ACTIVE_KEY) or generation_name(1))

    def reader_store(self) -> ChromaStore:
        """The live collection, for queries: never creates; raises CollectionGone mid-switch."""
        self._sync()
        name = self.registry.get_meta(ACTIVE_KEY) or generation_name(1)
        try:
            return self.catalog.open(name, create=False)
        except CollectionGone:
            if self.registry.stats()["chunks"] == 0:  # nothing indexed yet: an empty index, not a race
                return self.catalog.open(name)
            raise

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """One writer at a time across processes (CLI ingest beside the app)."""
        self.settings.home_dir.mkdir(parents=True, exist_ok=True)
        with open(self.settings.home_dir / "index.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _store_copy(self, data: bytes, sha: str, suffix: str) -> Path:
        dest = self.settings.files_dir / f"{sha}{suffix.lower()}"
        if not dest.exists():
            tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
            tmp.write_bytes(data)
            os.replace(tmp, dest)
        return dest

    # --- ingest ------------------------------------------------------------
    def ingest_paths(
        self, paths: Sequence[Path], progress: Progress | None = None, skipped: list[Path] | None = None
    ) -> list[FileResult]:
        files = list(iter_files(paths, skipped))
        self.reconcile()  # finish what an interrupted run left behind
        results: list[FileResult] = []
        for i, (path, _explicit) in enumerate(files):
            if progress:
                progress(i, len(files), str(path))
            results.append(self.ingest_file(path))
        if progress:
            progress(len(files), len(files), "done")
        return results

    def ingest_file(self, path: Path, source: str | None = None) -> FileResult:
        name = source or str(path)
        try:
            doc, data = load_path(path, self.settings.max_file_bytes, name)
        except LoadError as e:
            return FileResult(name, "failed", reason=str(e))
        return self._index(doc.source, data, doc)

    def ingest_bytes(self, data: bytes, source: str) -> FileResult:
        """Index an uploaded file's bytes under the (already sanitised) name ``source``."""
        try:
            check_size(len(data), self.settings.max_file_bytes, source)
            doc = load_bytes(data, source)
        except LoadError as e:
            return FileResult(source, "failed", reason=str(e))
        return self._index(source, data, doc)

    def _index(self, source: str, data: bytes, doc: LoadedDocument) -> FileResult:
        sha = sha256_bytes(data)
        doc_id = doc_id_for(source)
        try:
            with self.write_lock():
                store = self.active_store()
                prev = self.registry.get(doc_id)
                old_ids = self.registry.chunk_ids(doc_id) if prev else set()
                if prev and prev.sha256 == sha and len(store.existing_ids(sorted(old_ids))) == len(old_ids):
                    return FileResult(source, "unchanged", chunks=prev.chunks)
                chunks = chunk_document(doc, self.splitter, doc_id)
                if not chunks:
                    return FileResult(source, "failed", reason=f"{source}: no extractable text; nothing was indexed.")
                have = store.existing_ids([c.id for c in chunks])
                new = [c for c in chunks if c.id not in have]
                kept = [c for c in chunks if c.id in have]
                vectors = self.embedder.embed_documents([c.text for c in new])
                stored = self._store_copy(data, sha, Path(source).suffix)
                store.add(new, vectors)
                store.update_metadata(kept)  # offsets move when text before them changed
                version = self.registry.put(
                    IndexedDocument(
                        doc_id=doc_id,
                        source=source,
                        sha256=sha,
                        mime=doc.mime,
                        pages=sum(1 for p in doc.pages if p.page is not None) or 1,
                        chunks=len(chunks),
                        indexed_at=time.time(),
                        stored_path=str(stored),
                    ),
                    [c.id for c in chunks],
                )
                self._wrote(version)
                stale = old_ids - {c.id for c in chunks}
                store.delete(sorted(stale))
                if prev and prev.sha256 != sha and not self.registry.sha_in_use(prev.sha256):
                    Path(prev.stored_path).unlink(missing_ok=True)
        except Exception as e:  # a store/embedder failure must not stop the batch
            log.exception("indexing %s failed", source)
            return FileResult(source, "failed", reason=f"{source}: indexing failed ({type(e).__name__}: {e}).")
        return FileResult(source, "indexed", chunks=len(chunks), embedded=len(new))

    # --- delete ------------------------------------------------------------
    def delete(self, doc_id: str) -> bool:
        with self.write_lock():
            doc = self.registry.get(doc_id)
            if doc is None:
                return False
            ids = self.registry.chunk_ids(doc_id)
            self._wrote(self.registry.delete(doc_id))  # registry first: the document disappears atomically
            self.active_store().delete(sorted(ids))
            if not self.registry.sha_in_use(doc.sha256):
                Path(doc.stored_path).unlink(missing_ok=True)
            return True

    # --- re-index ----------------------------------------------------------
    def reindex(self, progress: Progress | None = None) -> ReindexReport:
        """Rebuild every document into a new collection, then switch in one transaction.

        Queries keep reading the old collection until the switch. A document whose stored
        copy cannot be read keeps its current chunks (copied over with their vectors).
        """
        t0 = time.perf_counter()
        self.reconcile()
        with self.write_lock():
            old = self.active_store()
            new_name = generation_name(generation_number(old.name) + 1)
            new = self.catalog.open(new_name)
            docs = self.registry.documents()
            items: list[tuple[IndexedDocument, list[str]]] = []
            failed: list[FileResult] = []
            total_chunks = 0
            for i, d in enumerate(docs):
                if progress:
                    progress(i, len(docs), d.source)
                try:
                    data = Path(d.stored_path).read_bytes()
                    loaded = load_bytes(data, d.source)
                    chunks = chunk_document(loaded, self.splitter, d.doc_id)
                    new.add(chunks, self.embedder.embed_documents([c.text for c in chunks]))
                    ids = [c.id for c in chunks]
                    items.append((IndexedDocument(**{**d.__dict__, "chunks": len(chunks)}), ids))
                except (OSError, LoadError) as e:
                    failed.append(FileResult(d.source, "failed", reason=f"kept the previous index of it: {e}"))
                    ids = sorted(self.registry.chunk_ids(d.doc_id))
                    self._copy_chunks(old, new, ids)
                    items.append((d, ids))
                total_chunks += len(ids)
            self._wrote(self.registry.put_many(items, {ACTIVE_KEY: new_name, EMBEDDER_KEY: self.embedder.name}))
            self.catalog.drop(old.name)
        if progress:
            progress(len(docs), len(docs), "done")
        return ReindexReport(len(docs), total_chunks, tuple(failed), time.perf_counter() - t0, new_name)

    def _copy_chunks(self, src: ChromaStore, dst: ChromaStore, ids: Sequence[str]) -> None:
        if not ids:
            return
        r = src.collection.get(ids=list(ids), include=["embeddings"])
        vecs = {cid: v for cid, v in zip(r["ids"], r["embeddings"], strict=True)}
        chunks = [c for c in src.get(ids) if c.id in vecs]
        dst.add(chunks, np.asarray([vecs[c.id] for c in chunks], dtype=np.float32))

    # --- consistency -------------------------------------------------------
    def _drop_leftovers(self, keep: set[str]) -> list[str]:
        dropped = [n for n in self.catalog.names() if n.startswith(COLLECTION_PREFIX) and n not in keep]
        for n in dropped:
            self.catalog.drop(n)
        return dropped

    def reconcile(self) -> dict[str, int]:
        """Make Chroma and the stored copies agree with the registry after a crash: drop
        half-built collections, chunks the registry does not list, and file copies no
        document refers to. Returns what was removed."""
        with self.write_lock():
            store = self.active_store()
            dropped = self._drop_leftovers(keep={store.name})
            orphans = store.all_ids() - self.registry.chunk_ids()
            store.delete(sorted(orphans))
            referenced = {Path(d.stored_path).name for d in self.registry.documents()}
            stray = [f for f in self.settings.files_dir.iterdir() if f.name not in referenced]
            for f in stray:
                f.unlink(missing_ok=True)
        return {"collections": len(dropped), "chunks": len(orphans), "files": len(stray)}

    def missing_chunks(self) -> int:
        """Chunks the registry lists but Chroma lacks (should be 0)."""
        listed = self.registry.chunk_ids()
        return len(listed) - len(self.active_store().existing_ids(sorted(listed)))


def chunks_of(store: ChromaStore, registry: Registry, doc_id: str) -> list[Chunk]:
    return sorted(store.get(sorted(registry.chunk_ids(doc_id))), key=lambda c: c.start)
