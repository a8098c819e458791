"""BM25 over everything the registry lists, kept current: :class:`SparseSearcher` rebuilds the
:class:`~rag.sparse.BM25Index` when the registry's write stamp changes (in a background thread
after each write, see :meth:`SparseSearcher.refresh_soon`), keeps a snapshot of it on disk for the
next process, and answers keyword queries, widened by pseudo-relevance feedback on request.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from rag.feedback import expansion_terms
from rag.heap import trim_heap
from rag.sparse import BM25Index
from rag.sparse_tokens import tokenize, tokens_to_str

log = logging.getLogger(__name__)


def _consumed(stored: list[str | None]) -> Iterator[list[str]]:
    """Each stored token string split into tokens, dropped from ``stored`` once read, so the
    strings (~0.1 GiB at 100k chunks) are freed while the index is built, not after."""
    for i, toks in enumerate(stored):
        stored[i] = None
        yield (toks or "").split()


Row = tuple[str, str, "str | None"]  # (chunk id, doc id, stored tokens or None)


class SparseSearcher:
    """BM25 over everything the registry lists, rebuilt when the index version changes.

    ``rows()`` lists (chunk id, doc id, tokens) from the registry (the source of truth, so BM25
    and Chroma change in the same transaction); ``version()`` is the registry's write stamp;
    ``texts(ids)`` fetches chunk texts for rows stored before tokens were (tokenised here, in
    memory). A snapshot of the built index is kept under ``snapshot_dir/<version>`` so a new
    process loads it instead of rebuilding.
    """

    def __init__(
        self,
        rows: Callable[[], Sequence[Row]],
        version: Callable[[], str],
        texts: Callable[[Sequence[str]], dict[str, str]],
        snapshot_dir: Path | None = None,
    ) -> None:
        self._rows = rows
        self._version = version
        self._texts = texts
        self.snapshot_dir = snapshot_dir
        self._lock = threading.Lock()
        self._built: tuple[str, BM25Index, npt.NDArray[np.str_]] | None = None
        self._refresh_lock = threading.Lock()
        self._refresher: threading.Thread | None = None
        self._refresh_again = False

    def refresh_soon(self) -> None:
        """Rebuild (or load) the index for the current version in a background thread, so the
        first question after an ingest does not pay for it (1.3 s at 14k chunks, 14 s at 104k,
        measured). Calls while a rebuild runs are merged into one more rebuild after it. A query
        arriving mid-rebuild waits for it, as it would have without this."""
        with self._refresh_lock:
            if self._refresher is not None:
                self._refresh_again = True
                return
            self._refresher = threading.Thread(target=self._refresh_loop, name="bm25-refresh", daemon=True)
            self._refresher.start()

    def _refresh_loop(self) -> None:
        while True:
            try:
                self.index()
            except Exception:  # only a warm-up: the next query rebuilds and reports any error
                log.warning("background BM25 refresh failed", exc_info=True)
            with self._refresh_lock:
                if not self._refresh_again:
                    self._refresher = None
                    return
                self._refresh_again = False

    def wait_refreshed(self, timeout: float | None = None) -> None:
        """Block until no background refresh is running (tests, and the CLI before it exits)."""
        t = self._refresher
        if t is not None:
            t.join(timeout)

    def index(self) -> tuple[BM25Index, npt.NDArray[np.str_]]:
        """-> (index, doc id of each indexed chunk) for the current version."""
        v = self._version()
        with self._lock:
            if self._built is None or self._built[0] != v:
                # Queries wait on this lock during the build, so the old index serves no one
                # meanwhile: free it first (~0.1 GiB at 100k chunks off the rebuild's peak), and
                # hand the heap's free pages back, since this thread's allocations may come from
                # an arena of its own and not reuse them (trim_heap).
                self._built = None
                trim_heap()
                self._built = (v, *self._load_or_build(v))
            return self._built[1], self._built[2]

    def _load_or_build(self, version: str) -> tuple[BM25Index, npt.NDArray[np.str_]]:
        snap = self.snapshot_dir / version if self.snapshot_dir and version else None
        if snap is not None and (snap / "ids.json").is_file():
            try:
                return BM25Index.load(snap)
            except Exception:  # a damaged snapshot is only a cache: rebuild
                log.warning("BM25 snapshot %s unreadable; rebuilding", snap, exc_info=True)
        rows = list(self._rows())
        missing = [cid for cid, _d, toks in rows if toks is None]
        texts = self._texts(missing) if missing else {}
        ids: list[str] = []
        docs: list[str] = []
        stored: list[str | None] = []  # token strings, split one at a time by _consumed
        for cid, doc_id, toks in rows:
            if toks is None:
                if cid not in texts:
                    continue  # listed but not in Chroma: reconcile will repair it
                toks = tokens_to_str(tokenize(texts[cid]))
            ids.append(cid)
            docs.append(doc_id)
            stored.append(toks)
        del rows, texts  # ``stored`` now holds the only reference to each token string
        # One chunk's token list at a time (a generator), not all of them: at 104k chunks the
        # lists peaked at 1.34 GiB against 0.56 (docs/performance.md).
        index = BM25Index(ids, _consumed(stored), doc_ids=docs)
        trim_heap()
        if snap is not None:
            self._save_snapshot(index, snap)
        return index, np.asarray(docs, dtype=np.str_)

    def _save_snapshot(self, index: BM25Index, snap: Path) -> None:
        """Write the snapshot under a temporary name, then rename it. Only once it is in place are
        older snapshots removed: a failed save (a full disk) leaves them, and no temporary files."""
        tmp = snap.with_name(f".{snap.name}.tmp{os.getpid()}")
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            index.save(tmp)
            os.replace(tmp, snap)
        except Exception as e:  # only a cache: another process wrote it first, or the disk is full or read-only
            if not (snap / "ids.json").is_file():
                log.warning(
                    "could not save the BM25 snapshot to %s (%s). Questions are still answered (the index "
                    "is in memory), but the next process rebuilds it. Free some space on that disk.",
                    snap,
                    e,
                )
            return
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        for old in snap.parent.iterdir():  # keep only the current snapshot
            if old.name != snap.name and not old.name.startswith("."):
                shutil.rmtree(old, ignore_errors=True)

    def search(
        self,
        query: str,
        k: int,
        doc_ids: Sequence[str] | None = None,
        feedback: Sequence[str] = (),
        n_terms: int = 10,
        weight: float = 0.5,
    ) -> list[tuple[str, float]]:
        """-> [(chunk id, BM25 score)], best first; ``doc_ids`` restricts to those documents.
        ``feedback`` texts (the first pass's best hits) widen the query by their ``n_terms``
        heaviest terms, each at up to ``weight`` of a query term's say (:mod:`rag.feedback`)."""
        index, docs = self.index()
        if len(index) == 0:
            return []
        q = tokenize(query)
        fb = [tokenize(t) for t in feedback]
        extra = expansion_terms(q, fb, index.idf([t for toks in fb for t in toks]), n_terms) if fb else []
        mask = np.isin(docs, list(doc_ids)) if doc_ids else None
        return [(index.ids[h.index], h.score) for h in index.search(q, k, mask, extra, weight)]
