"""A full disk at each write, the free-space check before a re-index, a re-index after the
embedding model changed, and RAG_HOME moved elsewhere (fake embedders, real Chroma)."""

from __future__ import annotations

import errno
import logging
import shutil
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

from ingest.registry import Registry
from rag.interfaces import Vectors
from rag.services import Services
from rag.sparse import BM25Index
from rag.store import ChromaStore
from tests.conftest import make_settings
from tests.fakes import EchoGenerator, HashEmbedder, OtherHashEmbedder

V1 = "The Eiffel Tower was completed in 1889 for the World's Fair in Paris."
V2 = "Omega zeta kappa: the tower was moved to Berlin in 1999."
ENOSPC = OSError(errno.ENOSPC, "No space left on device")


def _services(home: Path, embedder: HashEmbedder | None = None) -> Services:
    settings = make_settings(home, min_relevance=0.0)
    return Services(settings, embedder=embedder or HashEmbedder(), generator=EchoGenerator())


def _answers(s: Services, question: str, needle: str) -> bool:
    return any(needle in h.chunk.text for h in s.retriever.retrieve(question, 5))


def _full_copy(files_dir: Path) -> Callable[[pytest.MonkeyPatch], None]:
    real = Path.write_bytes

    def write_bytes(self: Path, data: Any) -> int:
        if self.parent == files_dir:  # the stored copy of an upload: half of it fits
            real(self, bytes(data)[: len(data) // 2])
            raise ENOSPC
        return real(self, data)

    return lambda m: m.setattr(Path, "write_bytes", write_bytes)


def _full_chroma(m: pytest.MonkeyPatch) -> None:
    real = ChromaStore.add

    def add(self: ChromaStore, chunks: Sequence[Any], vectors: Vectors) -> None:
        real(self, chunks[: len(chunks) // 2], vectors[: len(chunks) // 2])  # some batches made it
        raise ENOSPC

    m.setattr(ChromaStore, "add", add)


def _full_registry(error: Exception) -> Callable[[pytest.MonkeyPatch], None]:
    def put_many(*_a: object, **_k: object) -> str:
        raise error

    return lambda m: m.setattr(Registry, "put_many", put_many)


@pytest.mark.parametrize(
    ("where", "step"),
    [
        ("copy", "saving the stored copy"),
        ("chroma", "adding its passages to Chroma"),
        ("registry", "recording it in the registry"),
        ("registry-sqlite", "recording it in the registry"),
    ],
)
def test_a_full_disk_at_each_write_leaves_the_index_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, step: str
) -> None:
    s = _services(tmp_path / "home")
    s.indexer.ingest_bytes(V1.encode(), "eiffel.md")
    before = s.registry.documents()
    inject = {
        "copy": _full_copy(s.settings.files_dir),
        "chroma": _full_chroma,
        "registry": _full_registry(ENOSPC),
        "registry-sqlite": _full_registry(sqlite3.OperationalError("database or disk is full")),
    }[where]
    text = "\n\n".join([V2] * 3 + [V2.replace("Omega", f"Omega{i}") for i in range(6)])
    with monkeypatch.context() as m:
        inject(m)
        r = s.indexer.ingest_bytes(text.encode(), "eiffel.md")
    assert r.status == "failed"
    assert r.reason.startswith("eiffel.md: not indexed, the disk is full") and step in r.reason
    assert "answers as before" in r.reason and "Free some space on the disk holding" in r.reason
    assert s.registry.documents() == before
    assert _answers(s, "When was the Eiffel Tower completed?", "1889")
    assert not _answers(s, "omega zeta kappa Berlin", "Berlin")
    assert s.indexer.active_store().all_ids() == s.registry.chunk_ids()
    assert sorted(s.settings.files_dir.iterdir()) == [Path(before[0].stored_path)]  # no temporary file
    assert s.indexer.ingest_bytes(text.encode(), "eiffel.md").status == "indexed"  # space freed: works


def test_a_full_disk_while_saving_the_bm25_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    s = _services(tmp_path / "home")
    s.indexer.ingest_bytes(V1.encode(), "eiffel.md")
    s.sparse.wait_refreshed()
    s.sparse.index()
    old = sorted(p.name for p in s.settings.bm25_dir.iterdir())
    assert len(old) == 1

    def save(self: BM25Index, folder: Path) -> None:
        folder.mkdir(parents=True)
        (folder / "ids.json").write_text("[")  # part of it was written
        raise ENOSPC

    with monkeypatch.context() as m, caplog.at_level(logging.WARNING):
        m.setattr(BM25Index, "save", save)
        s.indexer.ingest_bytes(V2.encode(), "berlin.md")
        s.sparse.wait_refreshed()
        assert [h.chunk.source for h in s.retriever.bm25("omega zeta Berlin", 5)] == ["berlin.md"]
    assert sorted(p.name for p in s.settings.bm25_dir.iterdir()) == old  # kept; no temporary folder
    assert "could not save the BM25 snapshot" in caplog.text and "No space left on device" in caplog.text


class _Usage(NamedTuple):
    total: int
    used: int
    free: int


def test_reindex_checks_free_space_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = _services(tmp_path / "home")
    s.indexer.ingest_bytes(V1.encode(), "eiffel.md")
    live = s.indexer.active_store().name
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: _Usage(10 * 2**30, 10 * 2**30 - 2**20, 2**20))
    with pytest.raises(OSError) as e:  # ingest.disk.NotEnoughSpace
        s.indexer.reindex()
    msg = str(e.value)
    assert msg.startswith("Not enough free disk space to re-index: 1.0 MiB free on the disk holding")
    assert "MiB needed (twice the index's" in msg and "Free at least" in msg and "move RAG_HOME" in msg
    assert e.value.errno == errno.ENOSPC
    assert s.catalog.names() == [live] and s.indexer.active_store().name == live
    assert _answers(s, "When was the Eiffel Tower completed?", "1889")


def test_reindex_on_a_disk_that_fills_up_keeps_the_old_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = _services(tmp_path / "home")
    s.indexer.ingest_bytes(V1.encode(), "eiffel.md")
    live = s.indexer.active_store().name
    with monkeypatch.context() as m:
        _full_chroma(m)
        with pytest.raises(OSError, match="Re-index stopped: the disk filled up"):
            s.indexer.reindex()
    assert s.catalog.names() == [live]  # the half-built generation is gone
    assert _answers(s, "When was the Eiffel Tower completed?", "1889")


def _two_documents(home: Path) -> Services:
    s = _services(home)
    s.indexer.ingest_bytes(V1.encode(), "eiffel.md")
    s.indexer.ingest_bytes(V2.encode(), "berlin.md")
    return s


def test_reindex_with_a_new_model_never_copies_old_vectors(tmp_path: Path) -> None:
    old = _two_documents(tmp_path / "home")
    berlin = next(d for d in old.registry.documents() if d.source == "berlin.md")
    Path(berlin.stored_path).unlink()  # its stored copy cannot be re-read

    model = OtherHashEmbedder()
    s = _services(tmp_path / "home", model)
    report = s.indexer.reindex()
    [failed] = report.failed
    assert failed.source == "berlin.md" and "re-embedded its 1 stored passages with fake-hash-other" in failed.reason
    store = s.indexer.active_store()
    ids = sorted(s.registry.chunk_ids(berlin.doc_id))
    texts = [c.text for c in store.get(ids)]
    assert np.allclose(store.vectors(ids), model.embed_documents(texts))  # the new model's vectors
    assert not np.allclose(store.vectors(ids), HashEmbedder().embed_documents(texts))
    assert [h.chunk.source for h in s.retriever.dense.retrieve(V2, 1)] == ["berlin.md"]
    assert s.stats().indexed_with == model.name


def test_reindex_drops_an_unreadable_document_with_no_passages_left(tmp_path: Path) -> None:
    old = _two_documents(tmp_path / "home")
    berlin = next(d for d in old.registry.documents() if d.source == "berlin.md")
    Path(berlin.stored_path).unlink()
    old.indexer.active_store().delete(sorted(old.registry.chunk_ids(berlin.doc_id)))

    s = _services(tmp_path / "home", OtherHashEmbedder())
    [failed] = s.indexer.reindex().failed
    assert "none of its passages are left in the index: it was removed. Upload it again." in failed.reason
    assert [d.source for d in s.registry.documents()] == ["eiffel.md"]
    assert s.indexer.missing_chunks() == 0


def test_reindex_after_moving_rag_home(tmp_path: Path) -> None:
    old = _two_documents(tmp_path / "old")
    with sqlite3.connect(old.settings.registry_path) as db:  # as registries wrote before paths were relative
        for doc_id, stored in db.execute("SELECT doc_id, stored_path FROM documents").fetchall():
            absolute = stored if stored.startswith("/") else str(old.settings.home_dir / stored)
            db.execute("UPDATE documents SET stored_path=? WHERE doc_id=?", (absolute, doc_id))
    shutil.move(tmp_path / "old", tmp_path / "new")

    s = _services(tmp_path / "new")
    with sqlite3.connect(s.settings.registry_path) as db:
        assert sorted(r[0] for r in db.execute("SELECT stored_path FROM documents")) == sorted(
            f"files/{Path(d.stored_path).name}" for d in s.registry.documents()
        )
    assert all(Path(d.stored_path).is_relative_to(s.settings.files_dir) for d in s.registry.documents())
    report = s.indexer.reindex()
    assert report.failed == () and report.documents == 2
    assert _answers(s, "When was the Eiffel Tower completed?", "1889")
    assert s.indexer.ingest_bytes(V1.encode(), "eiffel.md").status == "unchanged"
