"""The write side with a fake embedder and a real Chroma in a temp dir."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from rag.interfaces import Vectors
from rag.services import Services
from tests.conftest import make_settings
from tests.fakes import HashEmbedder


def _write(p: Path, text: str) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


def _para(tag: str, n: int = 40) -> str:
    return " ".join(f"{tag}{i}" for i in range(n)) + "."


def test_ingest_then_unchanged_embeds_nothing(fake_services: Services, tmp_path: Path) -> None:
    f = _write(tmp_path / "docs" / "a.md", "\n\n".join(_para(t) for t in "abcdefgh"))
    first = fake_services.indexer.ingest_paths([tmp_path / "docs"])
    assert [r.status for r in first] == ["indexed"] and first[0].embedded == first[0].chunks > 1
    calls = len(fake_services.embedder.calls)  # type: ignore[attr-defined]
    again = fake_services.indexer.ingest_file(f)
    assert again.status == "unchanged" and again.embedded == 0
    assert len(fake_services.embedder.calls) == calls  # type: ignore[attr-defined]


def test_changed_file_replaces_exactly_its_own_chunks(tmp_path: Path) -> None:
    # one paragraph per chunk, so an edit touches only some chunks
    idx = Services(make_settings(tmp_path / "home", chunk_tokens=50, chunk_overlap_tokens=5), HashEmbedder()).indexer
    a = _write(tmp_path / "a.md", "\n\n".join(_para(t) for t in "abcdefgh"))
    b = _write(tmp_path / "b.md", "\n\n".join(_para(t) for t in "stuvwxyz"))
    idx.ingest_paths([a, b])
    store = idx.active_store()
    doc_a = idx.registry.documents()[0]
    b_ids_before = idx.registry.chunk_ids(idx.registry.documents()[1].doc_id)
    old_a = idx.registry.chunk_ids(doc_a.doc_id)

    _write(a, "\n\n".join(_para(t) for t in "abcdQQgh"))  # two paragraphs changed
    r = idx.ingest_file(a)
    assert r.status == "indexed" and 0 < r.embedded < r.chunks  # only new text was embedded
    new_a = idx.registry.chunk_ids(doc_a.doc_id)
    gone = old_a - new_a
    assert gone and not store.existing_ids(sorted(gone))  # old chunks removed from Chroma
    assert store.existing_ids(sorted(new_a)) == new_a
    assert idx.registry.chunk_ids(idx.registry.documents()[1].doc_id) == b_ids_before  # b untouched
    assert store.count() == len(idx.registry.chunk_ids())
    # offsets of kept chunks follow the new text
    text = a.read_text()
    for c in store.get(sorted(new_a)):
        assert text.strip()[c.start : c.end] == c.text


def test_failed_files_do_not_stop_the_batch(fake_services: Services, tmp_path: Path) -> None:
    _write(tmp_path / "d" / "good.txt", _para("good"))
    (tmp_path / "d" / "empty.md").write_bytes(b"")
    (tmp_path / "d" / "bin.txt").write_bytes(bytes(range(256)) * 10)
    (tmp_path / "d" / "skip.exe").write_bytes(b"MZ")  # unsupported inside a folder: passed over
    results = {Path(r.source).name: r for r in fake_services.indexer.ingest_paths([tmp_path / "d"])}
    assert set(results) == {"good.txt", "empty.md", "bin.txt"}
    assert results["good.txt"].status == "indexed"
    assert results["empty.md"].status == "failed" and "empty" in results["empty.md"].reason
    assert results["bin.txt"].status == "failed"
    assert fake_services.registry.stats()["documents"] == 1


def test_delete_removes_document_chunks_and_stored_copy(fake_services: Services, tmp_path: Path) -> None:
    idx = fake_services.indexer
    idx.ingest_file(_write(tmp_path / "a.md", _para("a", 300)))
    doc = idx.registry.documents()[0]
    assert Path(doc.stored_path).is_file()
    assert idx.delete(doc.doc_id)
    assert idx.registry.stats() == {"documents": 0, "chunks": 0}
    assert idx.active_store().count() == 0
    assert not Path(doc.stored_path).exists()
    assert not idx.delete(doc.doc_id)


def test_reindex_switches_to_a_new_collection_and_keeps_everything(fake_services: Services, tmp_path: Path) -> None:
    idx = fake_services.indexer
    idx.ingest_paths([_write(tmp_path / "a.md", _para("alpha", 200)), _write(tmp_path / "b.txt", _para("beta"))])
    before = idx.active_store().name
    n = idx.registry.stats()["chunks"]
    seen: list[tuple[int, int]] = []
    report = idx.reindex(progress=lambda d, t, m: seen.append((d, t)))
    assert report.documents == 2 and report.chunks == n and not report.failed
    assert idx.active_store().name == report.collection != before
    assert before not in fake_services.catalog.names()
    assert idx.active_store().count() == n
    assert seen[-1] == (2, 2)
    hits = fake_services.retriever.retrieve(_para("beta"), 3)
    assert hits and hits[0].chunk.source.endswith("b.txt")


def test_reconcile_removes_orphans_and_half_built_collections(fake_services: Services, tmp_path: Path) -> None:
    idx = fake_services.indexer
    idx.ingest_file(_write(tmp_path / "a.md", _para("a")))
    fake_services.catalog.open("chunks_g99")  # a crashed re-index left this behind
    from rag.types import Chunk

    orphan = Chunk("orphan", "x", "x.md", None, 0, 1, "x")
    idx.active_store().add([orphan], fake_services.embedder.embed_documents(["x"]))
    stray = fake_services.settings.files_dir / "deadbeef.md.tmp123"  # a copy a crash left half-written
    stray.write_bytes(b"x")
    removed = idx.reconcile()
    assert removed == {"collections": 1, "chunks": 1, "files": 1}
    assert not stray.exists() and Path(idx.registry.documents()[0].stored_path).exists()
    assert idx.missing_chunks() == 0
    assert idx.active_store().count() == len(idx.registry.chunk_ids())


def test_query_holding_a_dropped_collection_retries_on_the_new_one(fake_services: Services, tmp_path: Path) -> None:
    from rag.retrieve import DenseRetriever
    from rag.store import CollectionGone

    idx = fake_services.indexer
    idx.ingest_file(_write(tmp_path / "b.txt", _para("beta")))
    stale = idx.reader_store()
    old_name = stale.name
    idx.reindex()  # drops the collection `stale` points at
    handed = iter([stale])
    retriever = DenseRetriever(fake_services.embedder, lambda: next(handed, None) or idx.reader_store(), 0.1)
    hits = retriever.retrieve(_para("beta"), 3)
    assert hits and hits[0].chunk.source.endswith("b.txt")
    with pytest.raises(CollectionGone):  # a reader never re-creates a dropped collection empty
        fake_services.catalog.open(old_name, create=False)
    assert old_name not in fake_services.catalog.names()


def test_ingest_embeds_chunks_of_many_files_together(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    idx = Services(make_settings(tmp_path / "home", ingest_batch_chunks=64), embedder).indexer
    for i in range(20):
        _write(tmp_path / "d" / f"f{i:02d}.md", _para(f"doc{i}x", 30))
    results = idx.ingest_paths([tmp_path / "d"])
    assert [r.status for r in results] == ["indexed"] * 20
    assert [Path(r.source).name for r in results] == [f"f{i:02d}.md" for i in range(20)]  # input order kept
    assert len(embedder.calls) < 20 and sum(embedder.calls) == 20
    assert idx.active_store().count() == len(idx.registry.chunk_ids()) == 20


def test_same_file_twice_in_one_run(fake_services: Services, tmp_path: Path) -> None:
    f = _write(tmp_path / "d" / "a.md", _para("a"))
    results = fake_services.indexer.ingest_paths([tmp_path / "d", f])
    assert [r.status for r in results] == ["indexed", "unchanged"]


class _FailsOnWord(HashEmbedder):
    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        if any("poison" in t for t in texts):
            raise RuntimeError("embedder crashed")
        return super().embed_documents(texts)


def test_a_failing_batch_is_retried_file_by_file(tmp_path: Path) -> None:
    idx = Services(make_settings(tmp_path / "home"), _FailsOnWord()).indexer
    _write(tmp_path / "d" / "a.md", _para("good"))
    _write(tmp_path / "d" / "b.md", _para("poison"))
    _write(tmp_path / "d" / "c.md", _para("fine"))
    results = {Path(r.source).name: r for r in idx.ingest_paths([tmp_path / "d"])}
    assert results["a.md"].status == results["c.md"].status == "indexed"
    assert results["b.md"].status == "failed" and "embedder crashed" in results["b.md"].reason
    assert idx.missing_chunks() == 0 and idx.active_store().count() == len(idx.registry.chunk_ids())
