"""The write path of an ingest: plan, embed (outside the write lock), then commit under it.

Order under the lock: stored copies, new chunks into Chroma, the registry switch in one
transaction, then stale chunks out of Chroma. Whatever fails before the switch is swept at once
(and is never listed, so never served meanwhile); the result names the step and, for a full
disk, the fix.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ingest.disk import disk_full_reason, is_disk_full
from rag.interfaces import Collection, Vectors
from rag.types import Chunk, FileResult, IndexedDocument, LoadedDocument

if TYPE_CHECKING:
    from ingest.pipeline import Indexer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    """A file loaded and chunked, or the reason it could not be."""

    source: str
    data: bytes
    doc: LoadedDocument | None
    chunks: list[Chunk]
    error: FileResult | None
    tokens: dict[str, str] | None = None  # chunk id -> BM25 tokens (Indexer.tokenize), space-separated
    sha: str = ""


@dataclass(frozen=True)
class _Plan:
    """What indexing one prepared file will change."""

    prep: Prepared
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
            sha256=self.prep.sha,
            mime=doc.mime,
            pages=sum(1 for p in doc.pages if p.page is not None) or 1,
            chunks=len(self.prep.chunks),
            indexed_at=time.time(),
            stored_path=str(stored),
        )

    def result(self) -> FileResult:
        prev = self.prev
        replaced = prev is not None and prev.sha256 != self.prep.sha
        return FileResult(
            self.prep.source,
            "indexed",
            chunks=len(self.prep.chunks),
            embedded=len(self.new),
            replaced=replaced,
            previous_sha256=prev.sha256 if prev is not None and replaced else "",
        )


class WriteFailed(Exception):
    """A write under the lock failed at ``step``; the cause is chained."""

    def __init__(self, step: str) -> None:
        super().__init__(step)
        self.step = step


def commit(ix: Indexer, group: Sequence[Prepared]) -> list[FileResult]:
    """Embed and store a group of prepared files; one file's failure never fails the others."""
    try:
        return _commit_group(ix, group)
    except Exception as e:
        cause = e.__cause__ if isinstance(e, WriteFailed) and e.__cause__ is not None else e
        step = e.step if isinstance(e, WriteFailed) else "indexing"
        if is_disk_full(e):  # file by file would fail the same way
            return [p.error or _failed(ix, p.source, step, cause, True) for p in group]
        if len(group) == 1:
            log.exception("indexing %s failed", group[0].source)
            return [_failed(ix, group[0].source, step, cause, False)]
        log.warning("a batch of %d files failed; retrying them one by one", len(group))
        return [r for prep in group for r in commit(ix, [prep])]


def _failed(ix: Indexer, name: str, step: str, e: BaseException, disk_full: bool) -> FileResult:
    if disk_full:
        return FileResult(name, "failed", reason=disk_full_reason(name, step, ix.settings.home_dir))
    where = "" if step == "indexing" else f" while {step}"
    return FileResult(name, "failed", reason=f"{name}: indexing failed{where} ({type(e).__name__}: {e}).")


def _plan(ix: Indexer, ready: Sequence[Prepared], store: Collection) -> tuple[dict[str, FileResult], list[_Plan]]:
    """-> (results of the files already indexed as they are, plans for the others)."""
    looked = []
    for prep in ready:
        doc_id = prep.chunks[0].doc_id
        prev = ix.registry.get(doc_id)
        looked.append((prep, prev, ix.registry.chunk_ids(doc_id) if prev else set()))
    # One Chroma lookup for the whole group (not one or two per file): which of the new
    # chunks, and of the chunks the registry lists for these documents, it already has.
    wanted = {c.id for prep, *_ in looked for c in prep.chunks}.union(*(old for *_, old in looked))
    in_store = store.existing_ids(sorted(wanted))
    unchanged: dict[str, FileResult] = {}
    plans: list[_Plan] = []
    for prep, prev, old_ids in looked:
        if prev and prev.sha256 == prep.sha and old_ids <= in_store:
            unchanged[prep.source] = FileResult(prep.source, "unchanged", chunks=prev.chunks)
            continue
        have = {c.id for c in prep.chunks if c.id in in_store}
        plans.append(_Plan(prep, prev, old_ids, [c for c in prep.chunks if c.id not in have], have))
    return unchanged, plans


def _embed(ix: Indexer, chunks: Sequence[Chunk], into: dict[str, Vectors]) -> None:
    if chunks:
        vectors = ix.embedder.embed_documents([c.text for c in chunks])
        into.update(zip([c.id for c in chunks], vectors, strict=True))


def _commit_group(ix: Indexer, group: Sequence[Prepared]) -> list[FileResult]:
    results: dict[str, FileResult] = {p.source: p.error for p in group if p.error is not None}
    ready = [p for p in group if p.error is None]
    if ready:
        # The slow part, outside the lock: embed what Chroma does not have yet.
        _unchanged, plans = _plan(ix, ready, ix.active_store())
        vectors: dict[str, Vectors] = {}
        _embed(ix, [c for plan in plans for c in plan.new], vectors)
        with ix.write_lock():
            store = ix.active_store()  # look again: another writer may have changed things
            unchanged, plans = _plan(ix, ready, store)
            results.update(unchanged)
            if plans:
                # chunks another writer removed meanwhile (rare) are embedded here
                _embed(ix, [c for plan in plans for c in plan.new if c.id not in vectors], vectors)
                results.update(_write(ix, store, plans, vectors))
    return [results[prep.source] for prep in group]


def _write(
    ix: Indexer, store: Collection, plans: Sequence[_Plan], vectors: dict[str, Vectors]
) -> dict[str, FileResult]:
    """Under the write lock: stored copies, Chroma, then the registry switch, then clean-up."""
    new = [c for plan in plans for c in plan.new]
    step = "saving the stored copy of the file"
    try:
        items = []
        for plan in plans:
            stored = ix._store_copy(plan.prep.data, plan.prep.sha, Path(plan.prep.source).suffix)
            items.append((plan.indexed(stored), [c.id for c in plan.prep.chunks]))
        step = "adding its passages to Chroma"
        store.add(new, np.asarray([vectors[c.id] for c in new], dtype=np.float32))
        store.update_metadata([c for plan in plans for c in plan.prep.chunks if c.id in plan.have])
        step = "recording it in the registry"
        tokens = {k: v for plan in plans for k, v in (plan.prep.tokens or {}).items()}
        version = ix.registry.put_many(items, {}, tokens)
    except Exception as e:
        ix._sweep_after_failure()  # nothing new is listed: remove what was written
        raise WriteFailed(step) from e
    ix._wrote(version)
    try:
        store.delete(sorted({i for plan in plans for i in plan.stale()}))
    except Exception:  # no longer listed, so never served; the next reconcile removes them
        log.warning("could not delete replaced passages from Chroma", exc_info=True)
    for plan in plans:
        prev = plan.prev
        if prev and prev.sha256 != plan.prep.sha and not ix.registry.sha_in_use(prev.sha256):
            Path(prev.stored_path).unlink(missing_ok=True)
    return {plan.prep.source: plan.result() for plan in plans}
