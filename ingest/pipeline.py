"""load -> chunk -> embed -> store, one file at a time, with a per-file result.

Only the registry decides what is indexed: retrieval serves the chunks it lists and nothing
else (:meth:`ingest.registry.Registry.listed_ids`). Files are parsed, and their new chunks
embedded, before the write lock is taken, so questions and other writers are not held up by
the slow part. Under the lock: the stored copy is written, new chunks are added to Chroma, the
registry switches to the new chunk list in one transaction, then stale chunks are deleted. A
failure or a crash anywhere leaves the old version answerable; what was written before it is
never listed, so never served, and is swept by :meth:`Indexer.reconcile`, which runs after a
failed write, at start-up and before each ingest run when a cheap check finds anything amiss
(:meth:`Indexer.reconcile_if_needed`).
"""

from __future__ import annotations

import fcntl
import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ingest.chunking import chunk_document, doc_id_for, make_splitter
from ingest.commit import Prepared, commit
from ingest.disk import iter_files, write_atomic
from ingest.loaders import LoadError, check_size, load_bytes, load_path
from ingest.records import ACTIVE_KEY, COLLECTION_PREFIX, EMBEDDER_KEY, generation_name, sha256_bytes, sparse_tokens
from ingest.registry import Registry
from rag.config import Settings
from rag.interfaces import Catalog, Collection, CollectionGone, Embedder, Progress, SparseRefresher, SparseTokenizer
from rag.types import Chunk, FileResult, ReindexReport

log = logging.getLogger(__name__)

__all__ = [
    "ACTIVE_KEY",
    "EMBEDDER_KEY",
    "FileResult",
    "Indexer",
    "Progress",
    "ReindexReport",
    "chunks_of",
    "iter_files",
    "sparse_tokens",
]


class Indexer:
    """Owns the write side of the index: ingest, delete, re-index, reconcile.

    ``tokenize`` gives the BM25 tokens stored with each chunk; ``sparse`` is told after each change
    to the index (an ingest call, a delete, a re-index), to rebuild BM25 in the background, off
    the next question's path. rag.services passes the concrete ones."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        catalog: Catalog,
        registry: Registry,
        tokenize: SparseTokenizer,
        sparse: SparseRefresher | None = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.catalog = catalog
        self.registry = registry
        self.tokenize = tokenize
        self.sparse = sparse
        self.splitter = make_splitter(embedder.count_tokens, settings.chunk_tokens, settings.chunk_overlap_tokens)
        settings.files_dir.mkdir(parents=True, exist_ok=True)
        if self.registry.get_meta(ACTIVE_KEY) is None:
            self.registry.set_meta(ACTIVE_KEY, generation_name(1))
            self.registry.set_meta(EMBEDDER_KEY, embedder.name)
        self.registry.relocate_stored_paths(settings.files_dir)  # registries from before relative paths

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
        if self.sparse is not None:  # cheap when nothing changed: BM25 is keyed by the registry version
            self.sparse.refresh_soon()

    def active_store(self) -> Collection:
        """The live collection, for writers (created if it does not exist yet)."""
        self._sync()
        return self.catalog.open(self.registry.get_meta(ACTIVE_KEY) or generation_name(1))

    def reader_store(self) -> Collection:
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
    def write_lock(self, blocking: bool = True) -> Iterator[bool]:
        """One writer at a time across processes (CLI ingest beside the app). Yields whether the
        lock is held: with ``blocking=False``, False when another writer has it."""
        self.settings.home_dir.mkdir(parents=True, exist_ok=True)
        with open(self.settings.home_dir / "index.lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _store_copy(self, data: bytes, sha: str, suffix: str) -> Path:
        dest = self.settings.files_dir / f"{sha}{suffix.lower()}"
        if not dest.exists():
            write_atomic(dest, data)
        return dest

    # --- ingest ------------------------------------------------------------
    def ingest_paths(
        self, paths: Sequence[Path], progress: Progress | None = None, skipped: list[Path] | None = None
    ) -> list[FileResult]:
        """Index files and folders. Parsing runs in a background thread while the main thread
        embeds; chunks from several files are embedded together in batches of about
        ``settings.tuning.ingest_batch_chunks`` (one forward pass per batch, not per file).
        """
        files = [p for p, _explicit in iter_files(paths, skipped)]
        self.reconcile_if_needed()  # finish what an interrupted run left behind
        prepared: queue.Queue[Prepared | None] = queue.Queue(maxsize=256)

        def produce() -> None:
            try:
                for path in files:
                    prepared.put(self._prepare(path=path))
            finally:
                prepared.put(None)

        threading.Thread(target=produce, name="ingest-parse", daemon=True).start()
        results: list[FileResult] = []
        group: list[Prepared] = []
        pending = 0
        if progress:
            progress(0, len(files), "starting")
        while True:
            item = prepared.get()
            if item is not None and any(g.source == item.source for g in group):
                results += commit(self, group)  # the same file twice: keep them in separate groups
                group, pending = [], 0
            if item is not None:
                group.append(item)
                pending += len(item.chunks)
            if group and (item is None or pending >= self.settings.tuning.ingest_batch_chunks):
                results += commit(self, group)
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
        """Index an uploaded file's bytes under the (already sanitised) name ``source``.
        ``replaced`` in the result says it was a new version of ``source``."""
        return self._commit_one(self._prepare(data=data, source=source))

    def _commit_one(self, prep: Prepared) -> FileResult:
        [result] = commit(self, [prep])
        self._changed()
        return result

    def _prepare(self, path: Path | None = None, data: bytes | None = None, source: str | None = None) -> Prepared:
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
            tokens = sparse_tokens(chunks, self.tokenize)
        except LoadError as e:
            return Prepared(name, b"", None, [], FileResult(name, "failed", reason=str(e)))
        except Exception as e:  # never let one file stop the batch
            log.exception("preparing %s failed", name)
            reason = f"{name}: {type(e).__name__}: {e}"
            return Prepared(name, b"", None, [], FileResult(name, "failed", reason=reason))
        if not chunks:
            reason = f"{name}: no extractable text; nothing was indexed."
            return Prepared(name, b"", None, [], FileResult(name, "failed", reason=reason))
        return Prepared(name, raw, doc, chunks, None, tokens, sha256_bytes(raw))

    # --- delete ------------------------------------------------------------
    def delete(self, doc_id: str) -> bool:
        """Remove a document. It stops being answerable with the registry write, even if removing
        its chunks from Chroma then fails (they are swept later)."""
        with self.write_lock():
            doc = self.registry.get(doc_id)
            if doc is None:
                return False
            ids = self.registry.chunk_ids(doc_id)
            self._wrote(self.registry.delete(doc_id))  # registry first: the document disappears atomically
            try:
                self.active_store().delete(sorted(ids))
            except Exception:
                log.warning("deleting the chunks of %s from Chroma failed; sweeping", doc.source, exc_info=True)
                self._sweep_after_failure()
            if not self.registry.sha_in_use(doc.sha256):
                Path(doc.stored_path).unlink(missing_ok=True)
        self._changed()
        return True

    # --- re-index ----------------------------------------------------------
    def reindex(self, progress: Progress | None = None) -> ReindexReport:
        """Rebuild every document into a new collection, then switch in one transaction
        (:mod:`ingest.reindex`). Raises :class:`ingest.disk.NotEnoughSpace` when the disk
        cannot hold the new collection beside the old one."""
        from ingest.reindex import reindex

        return reindex(self, progress)

    # --- consistency -------------------------------------------------------
    def _stray_files(self) -> list[Path]:
        referenced = {Path(d.stored_path).name for d in self.registry.documents()}
        return [f for f in self.settings.files_dir.iterdir() if f.name not in referenced and f.is_file()]

    def _leftover_collections(self, active: str) -> list[str]:
        return [n for n in self.catalog.names() if n.startswith(COLLECTION_PREFIX) and n != active]

    def _sweep(self) -> dict[str, int]:
        """The clean-up behind :meth:`reconcile`; the caller holds the write lock."""
        store = self.active_store()
        dropped = self._leftover_collections(store.name)
        for n in dropped:
            self.catalog.drop(n)
        orphans = store.all_ids() - self.registry.chunk_ids()
        store.delete(sorted(orphans))
        stray = self._stray_files()
        for f in stray:
            f.unlink(missing_ok=True)
        return {"collections": len(dropped), "chunks": len(orphans), "files": len(stray)}

    def _sweep_after_failure(self) -> None:
        try:
            self._sweep()
        except Exception:  # what is left is not listed, so never served
            log.warning("clean-up after a failed write failed; the next start-up or write retries it", exc_info=True)

    def reconcile(self) -> dict[str, int]:
        """Make Chroma and the stored copies agree with the registry after a crash: drop
        half-built collections, chunks the registry does not list, and file copies no
        document refers to. Returns what was removed."""
        with self.write_lock():
            return self._sweep()

    def consistent(self) -> bool:
        """A cheap check (collection names, one count, a folder listing) that nothing is left
        for :meth:`reconcile` to remove; chunks written by hand under listed ids escape it."""
        store = self.active_store()
        return (
            not self._leftover_collections(store.name)
            and store.count() == len(self.registry.listed_ids())
            and not self._stray_files()
        )

    def reconcile_if_needed(self, blocking: bool = True) -> dict[str, int] | None:
        """:meth:`reconcile` when :meth:`consistent` finds something amiss. With ``blocking=False``
        (start-up), skipped while another writer holds the lock: its work in progress is not a
        leftover. -> what was removed, or None when nothing was done."""
        if self.consistent():
            return None
        with self.write_lock(blocking) as held:
            return self._sweep() if held else None

    def missing_chunks(self) -> int:
        """Chunks the registry lists but Chroma lacks (should be 0)."""
        listed = self.registry.chunk_ids()
        return len(listed) - len(self.active_store().existing_ids(sorted(listed)))


def chunks_of(store: Collection, registry: Registry, doc_id: str) -> list[Chunk]:
    return sorted(store.get(sorted(registry.chunk_ids(doc_id))), key=lambda c: c.start)
