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
import queue
import threading
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
from rag.sparse import tokenize, tokens_to_str
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
class _Prepared:
    """A file loaded and chunked, or the reason it could not be."""

    source: str
    data: bytes
    doc: LoadedDocument | None
    chunks: list[Chunk]
    error: FileResult | None
    tokens: dict[str, str] | None = None  # chunk id -> BM25 tokens (rag.sparse), space-separated


@dataclass(frozen=True)
class _Plan:
    """What indexing one prepared file will change."""

    prep: _Prepared
    sha: str
    prev: IndexedDocument | None
    old_ids: set[str]
    new: list[Chunk]  # chunks not in Chroma yet: these need vectors
    have: set[str]  # chunk ids already in Chroma (unchanged passages)

    def stale(self) -> set[str]:
        return self.old_ids - {c.id for c in self.prep.chunks}

    def indexed(self, stored: Path) -> IndexedDocument:
        doc = self.prep.doc
        assert doc is not None
        return IndexedDocument(
            doc_id=self.prep.chunks[0].doc_id,
            source=self.prep.source,
            sha256=self.sha,
            mime=doc.mime,
            pages=sum(1 for p in doc.pages if p.page is not None) or 1,
            chunks=len(self.prep.chunks),
            indexed_at=time.time(),
            stored_path=str(stored),
        )


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


def sparse_tokens(chunks: Sequence[Chunk]) -> dict[str, str]:
    """BM25 tokens of each chunk, computed once here and stored in the registry."""
    return {c.id: tokens_to_str(tokenize(c.text)) for c in chunks}


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
        # Called after each change to the index (an ingest call, a delete, a re-index): Services
        # uses it to rebuild BM25 in the background, off the next question's path.
        self.on_change: Callable[[], None] | None = None
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

    def _changed(self) -> None:
        if self.on_change is not None:  # cheap when nothing changed: BM25 is keyed by the registry version
            self.on_change()

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
        """Index files and folders. Parsing runs in a background thread while the main thread
        embeds; chunks from several files are embedded together in batches of about
        ``settings.ingest_batch_chunks`` (one forward pass per batch, not per file)."""
        files = [p for p, _explicit in iter_files(paths, skipped)]
        self.reconcile()  # finish what an interrupted run left behind
        prepared: queue.Queue[_Prepared | None] = queue.Queue(maxsize=256)

        def produce() -> None:
            try:
                for path in files:
                    prepared.put(self._prepare(path=path))
            finally:
                prepared.put(None)

        threading.Thread(target=produce, name="ingest-parse", daemon=True).start()
        results: list[FileResult] = []
        group: list[_Prepared] = []
        pending = 0
        if progress:
            progress(0, len(files), "starting")
        while True:
            item = prepared.get()
            if item is not None and any(g.source == item.source for g in group):
                results += self._commit(group)  # the same file twice: keep them in separate groups
                group, pending = [], 0
            if item is not None:
                group.append(item)
                pending += len(item.chunks)
            if group and (item is None or pending >= self.settings.ingest_batch_chunks):
                results += self._commit(group)
                group, pending = [], 0
                if progress:
                    progress(len(results), len(files), results[-1].source)
            if item is None:
                break
        if progress:
            progress(len(files), len(files), "done")
        self._changed()
        return results

    def ingest_file(self, path: Path, source: str | None = None) -> FileResult:
        return self._commit_one(self._prepare(path=path, source=source))

    def ingest_bytes(self, data: bytes, source: str) -> FileResult:
        """Index an uploaded file's bytes under the (already sanitised) name ``source``."""
        return self._commit_one(self._prepare(data=data, source=source))

    def _commit_one(self, prep: _Prepared) -> FileResult:
        [result] = self._commit([prep])
        self._changed()
        return result

    def _prepare(self, path: Path | None = None, data: bytes | None = None, source: str | None = None) -> _Prepared:
        """Load and chunk one file (pure CPU work, safe to run beside the embedder)."""
        name = source or str(path)
        try:
            if path is not None:
                doc, raw = load_path(path, self.settings.max_file_bytes, name)
            else:
                raw = data or b""
                check_size(len(raw), self.settings.max_file_bytes, name)
                doc = load_bytes(raw, name)
            chunks = chunk_document(doc, self.splitter, doc_id_for(name))
            tokens = sparse_tokens(chunks)
        except LoadError as e:
            return _Prepared(name, b"", None, [], FileResult(name, "failed", reason=str(e)))
        except Exception as e:  # never let one file stop the batch
            log.exception("preparing %s failed", name)
            return _Prepared(name, b"", None, [], FileResult(name, "failed", reason=f"{name}: {type(e).__name__}: {e}"))
        if not chunks:
            reason = f"{name}: no extractable text; nothing was indexed."
            return _Prepared(name, b"", None, [], FileResult(name, "failed", reason=reason))
        return _Prepared(name, raw, doc, chunks, None, tokens)

    def _commit(self, group: Sequence[_Prepared]) -> list[FileResult]:
        """Embed and store a group of prepared files; one file's failure never fails the others."""
        try:
            return self._commit_group(group)
        except Exception as e:
            if len(group) == 1:
                log.exception("indexing %s failed", group[0].source)
                name = group[0].source
                return [FileResult(name, "failed", reason=f"{name}: indexing failed ({type(e).__name__}: {e}).")]
            log.warning("a batch of %d files failed; retrying them one by one", len(group))
            return [r for prep in group for r in self._commit([prep])]

    def _commit_group(self, group: Sequence[_Prepared]) -> list[FileResult]:
        results: dict[str, FileResult] = {}
        plans: list[_Plan] = []
        with self.write_lock():
            store = self.active_store()
            looked: list[tuple[_Prepared, str, IndexedDocument | None, set[str]]] = []
            for prep in group:
                if prep.error is not None:
                    results[prep.source] = prep.error
                    continue
                doc_id = prep.chunks[0].doc_id
                prev = self.registry.get(doc_id)
                looked.append((prep, sha256_bytes(prep.data), prev, self.registry.chunk_ids(doc_id) if prev else set()))
            # One Chroma lookup for the whole group (not one or two per file): which of the new
            # chunks, and of the chunks the registry lists for these documents, it already has.
            wanted = {c.id for prep, *_ in looked for c in prep.chunks}.union(*(old for *_, old in looked))
            in_store = store.existing_ids(sorted(wanted))
            for prep, sha, prev, old_ids in looked:
                if prev and prev.sha256 == sha and old_ids <= in_store:
                    results[prep.source] = FileResult(prep.source, "unchanged", chunks=prev.chunks)
                    continue
                have = {c.id for c in prep.chunks if c.id in in_store}
                plans.append(_Plan(prep, sha, prev, old_ids, [c for c in prep.chunks if c.id not in have], have))
            if plans:
                new = [c for plan in plans for c in plan.new]
                vectors = self.embedder.embed_documents([c.text for c in new])  # one batch for all files
                items = []
                for plan in plans:
                    stored = self._store_copy(plan.prep.data, plan.sha, Path(plan.prep.source).suffix)
                    items.append((plan.indexed(stored), [c.id for c in plan.prep.chunks]))
                # Chroma first, then the registry switch in one transaction, then clean-up.
                store.add(new, vectors)
                store.update_metadata([c for plan in plans for c in plan.prep.chunks if c.id in plan.have])
                tokens = {k: v for plan in plans for k, v in (plan.prep.tokens or {}).items()}
                self._wrote(self.registry.put_many(items, {}, tokens))
                store.delete(sorted({i for plan in plans for i in plan.stale()}))
                for plan in plans:
                    results[plan.prep.source] = FileResult(
                        plan.prep.source, "indexed", chunks=len(plan.prep.chunks), embedded=len(plan.new)
                    )
                    prev = plan.prev
                    if prev and prev.sha256 != plan.sha and not self.registry.sha_in_use(prev.sha256):
                        Path(prev.stored_path).unlink(missing_ok=True)
        return [results[prep.source] for prep in group]

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
        self._changed()
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
            batch: list[Chunk] = []  # chunks of several documents, embedded in one pass
            tokens: dict[str, str] = {}

            def flush() -> None:
                if batch:
                    new.add(batch, self.embedder.embed_documents([c.text for c in batch]))
                    batch.clear()

            for i, d in enumerate(docs):
                if progress:
                    progress(i, len(docs), d.source)
                try:
                    data = Path(d.stored_path).read_bytes()
                    loaded = load_bytes(data, d.source)
                    chunks = chunk_document(loaded, self.splitter, d.doc_id)
                    tokens.update(sparse_tokens(chunks))
                    batch.extend(chunks)
                    if len(batch) >= self.settings.ingest_batch_chunks:
                        flush()
                    ids = [c.id for c in chunks]
                    items.append((IndexedDocument(**{**d.__dict__, "chunks": len(chunks)}), ids))
                except (OSError, LoadError) as e:
                    failed.append(FileResult(d.source, "failed", reason=f"kept the previous index of it: {e}"))
                    ids = sorted(self.registry.chunk_ids(d.doc_id))
                    self._copy_chunks(old, new, ids)
                    items.append((d, ids))
                total_chunks += len(ids)
            flush()
            meta = {ACTIVE_KEY: new_name, EMBEDDER_KEY: self.embedder.name}
            self._wrote(self.registry.put_many(items, meta, tokens))
            self.catalog.drop(old.name)
        if progress:
            progress(len(docs), len(docs), "done")
        self._changed()
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
