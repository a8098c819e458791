"""Full re-index: rebuild every document into a new collection generation, then switch over
in one registry transaction. Questions keep reading the live generation meanwhile.

A document whose stored copy cannot be read keeps its passages: with their vectors when the
embedding model is the one the index was built with, else re-embedded from their stored text
(Chroma keeps it), so one collection never mixes two models' vectors. Before anything is
written, the disk must have room for the new generation beside the old one
(:func:`ingest.disk.check_reindex_space`); a disk that fills up anyway removes the half-built
generation and leaves the index answering as before.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ingest.chunking import chunk_document
from ingest.disk import NotEnoughSpace, check_reindex_space, is_disk_full
from ingest.loaders import LoadError, load_bytes
from ingest.records import ACTIVE_KEY, EMBEDDER_KEY, generation_name, generation_number, sparse_tokens
from rag.interfaces import Collection, Progress
from rag.types import Chunk, FileResult, IndexedDocument, ReindexReport

if TYPE_CHECKING:
    from ingest.pipeline import Indexer

log = logging.getLogger(__name__)


@dataclass
class _Build:
    """What the new generation will hold, collected document by document."""

    items: list[tuple[IndexedDocument, list[str]]] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)  # documents nothing of which could be kept
    failed: list[FileResult] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)
    chunks: int = 0


def reindex(ix: Indexer, progress: Progress | None = None) -> ReindexReport:
    t0 = time.perf_counter()
    with ix.write_lock():
        ix._sweep()  # a half-built generation left by a crash holds disk space too: drop it first
        if not ix.catalog.server:  # a Chroma server keeps its data on its own disk
            check_reindex_space(ix.settings.chroma_dir, ix.settings.home_dir)
        old = ix.active_store()
        new_name = generation_name(generation_number(old.name) + 1)
        new = ix.catalog.open(new_name)
        docs = ix.registry.documents()
        try:
            build = _build(ix, docs, old, new, progress)
            meta = {ACTIVE_KEY: new_name, EMBEDDER_KEY: ix.embedder.name}
            ix._wrote(ix.registry.put_many(build.items, meta, build.tokens, build.remove))
        except BaseException as e:
            _drop_quietly(ix, new_name)
            if is_disk_full(e):
                raise NotEnoughSpace(
                    f"Re-index stopped: the disk filled up while building the new collection ({e}). The "
                    "half-built collection was removed and the index answers as before. Free some space on "
                    f"the disk holding {ix.settings.home_dir}, then re-index again."
                ) from e
            raise
        _drop_quietly(ix, old.name)  # a leftover only costs space: the next reconcile drops it
    if progress:
        progress(len(docs), len(docs), "done")
    ix._changed()
    return ReindexReport(len(docs), build.chunks, tuple(build.failed), time.perf_counter() - t0, new_name)


def _drop_quietly(ix: Indexer, name: str) -> None:
    try:
        ix.catalog.drop(name)
    except Exception:
        log.warning("could not drop collection %s; the next reconcile drops it", name, exc_info=True)


def _build(
    ix: Indexer, docs: list[IndexedDocument], old: Collection, new: Collection, progress: Progress | None
) -> _Build:
    same_model = ix.registry.get_meta(EMBEDDER_KEY) == ix.embedder.name
    out = _Build()
    batch: list[Chunk] = []  # chunks of several documents, embedded in one pass

    def flush() -> None:
        if batch:
            new.add(batch, ix.embedder.embed_documents([c.text for c in batch]))
            batch.clear()

    for i, d in enumerate(docs):
        if progress:
            progress(i, len(docs), d.source)
        try:
            loaded = load_bytes(Path(d.stored_path).read_bytes(), d.source)
            chunks = chunk_document(loaded, ix.splitter, d.doc_id)
        except (OSError, LoadError) as e:
            kept = _keep_unreadable(ix, d, old, new, same_model, e, out)
            batch.extend(kept)
        else:
            out.tokens.update(sparse_tokens(chunks, ix.tokenize))
            batch.extend(chunks)
            out.items.append((IndexedDocument(**{**d.__dict__, "chunks": len(chunks)}), [c.id for c in chunks]))
            out.chunks += len(chunks)
        if len(batch) >= ix.settings.tuning.ingest_batch_chunks:
            flush()
    flush()
    return out


def _keep_unreadable(
    ix: Indexer, d: IndexedDocument, old: Collection, new: Collection, same_model: bool, e: Exception, out: _Build
) -> list[Chunk]:
    """Keep the passages of a document whose stored copy cannot be read. -> the chunks still to
    embed (none when their vectors could be copied)."""
    listed = sorted(ix.registry.chunk_ids(d.doc_id))
    kept = old.get(listed)  # the passages' text, as Chroma stores it
    why = f"could not re-read its stored copy ({e})"
    if not kept:
        out.remove.append(d.doc_id)
        reason = f"{why}, and none of its passages are left in the index: it was removed. Upload it again."
        out.failed.append(FileResult(d.source, "failed", reason=reason))
        return []
    if same_model:
        _copy_vectors(old, new, kept)
        reason = f"{why}; kept its previous {len(kept)} passages with their vectors."
        to_embed: list[Chunk] = []
    else:  # old vectors would mix two models' embedding spaces in one collection
        reason = f"{why}; re-embedded its {len(kept)} stored passages with {ix.embedder.name} (not re-chunked)."
        to_embed = kept
    if len(kept) < len(listed):
        reason += f" {len(listed) - len(kept)} passage(s) were missing from the index and are gone."
    out.tokens.update(sparse_tokens(kept, ix.tokenize))
    out.items.append((IndexedDocument(**{**d.__dict__, "chunks": len(kept)}), [c.id for c in kept]))
    out.failed.append(FileResult(d.source, "failed", chunks=len(kept), reason=reason))
    out.chunks += len(kept)
    return to_embed


def _copy_vectors(src: Collection, dst: Collection, chunks: list[Chunk]) -> None:
    vectors = src.vectors([c.id for c in chunks])
    if len(vectors) != len(chunks):  # a passage vanished between the two reads
        have = src.existing_ids([c.id for c in chunks])
        chunks = [c for c in chunks if c.id in have]
        vectors = src.vectors([c.id for c in chunks])
    dst.add(chunks, np.asarray(vectors, dtype=np.float32))
