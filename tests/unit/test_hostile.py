"""The hostile corpus (tests/hostile.py) through every way in: the Indexer over a folder,
uploads (``Services.upload``) and the Documents page. Fast: fake engines, ~100 KiB zip bomb."""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

import rag.ui.state as state
from ingest.pipeline import chunks_of
from rag.config import REPO_ROOT
from rag.jobs import runner_for
from rag.services import Services
from rag.types import FileResult
from tests.conftest import make_settings
from tests.fakes import EchoGenerator, HashEmbedder
from tests.hostile import DUPLICATE, MAX_FILE_MB, Expect, write_hostile_corpus

APP = REPO_ROOT / "app.py"
UNSAFE = re.compile(r"[\x00-\x1f\x7f]|\.\.")


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, dict[str, Expect]]:
    folder = tmp_path / "corpus"
    return folder, write_hostile_corpus(folder)


@pytest.fixture
def services(tmp_path: Path) -> Services:
    settings = make_settings(tmp_path / "home", max_file_mb=MAX_FILE_MB)
    return Services(settings, embedder=HashEmbedder(), generator=EchoGenerator())


def by_name(results: list[FileResult]) -> dict[str, list[FileResult]]:
    out: dict[str, list[FileResult]] = defaultdict(list)
    for r in results:
        out[Path(r.source).name].append(r)
    return out


def check_result(name: str, r: FileResult, expect: Expect, status: str | None = None) -> None:
    assert r.status == (status or expect.status), f"{name}: {r}"
    if r.status == "failed":
        assert r.reason.startswith(r.source + ":"), f"the message must name the file: {r.reason!r}"
        assert re.search(expect.reason, r.reason), f"{name}: {r.reason!r} does not match {expect.reason!r}"
    else:
        assert r.chunks > 0, f"{name}: {r}"


def check_index(services: Services, expect: dict[str, Expect], stored_as: dict[str, str]) -> None:
    """Registry and Chroma agree; indexed documents hold their text, and nothing hostile leaked."""
    indexer, registry = services.indexer, services.registry
    assert indexer.missing_chunks() == 0
    assert indexer.active_store().count() == len(registry.chunk_ids())
    docs = {Path(d.source).name: d for d in registry.documents()}
    assert set(docs) == {stored_as.get(n, n) for n, e in expect.items() if e.status == "indexed"}
    every_chunk = ""
    for name, e in expect.items():
        if e.status != "indexed":
            continue
        doc = docs[stored_as.get(name, name)]
        text = "\n".join(c.text for c in chunks_of(indexer.active_store(), registry, doc.doc_id))
        every_chunk += text
        for wanted in e.text:
            assert wanted in text, f"{name}: {wanted!r} not in {text!r}"
        if e.query:
            hits = services.retriever.retrieve(e.query, k=3)
            assert hits, f"{name}: nothing found for {e.query!r}"
            assert hits[0].chunk.doc_id == doc.doc_id, f"{name}: {e.query!r} found {hits[0].chunk.source}"
    for e in expect.values():
        for banned in e.not_text:
            assert banned not in every_chunk


# --- (1) the Indexer over the corpus folder ----------------------------------------------------
def test_indexer_over_hostile_folder(services: Services, corpus: tuple[Path, dict[str, Expect]]) -> None:
    folder, expect = corpus
    # A folder walk passes over unsupported types; name them explicitly to get their errors,
    # and name one good file again: the second time it is "unchanged".
    explicit = [folder / n for n, e in expect.items() if not e.walked]
    paths = [folder, *explicit, folder / DUPLICATE]

    results = by_name(services.indexer.ingest_paths(paths))
    assert set(results) == set(expect)
    for name, e in expect.items():
        check_result(name, results[name][0], e)
    assert [r.status for r in results[DUPLICATE]] == ["indexed", "unchanged"]
    assert all(len(rs) == 1 for n, rs in results.items() if n != DUPLICATE)
    check_index(services, expect, {})

    # everything again: good files unchanged, bad files fail the same way, nothing re-embedded
    again = by_name(services.indexer.ingest_paths(paths))
    for name, e in expect.items():
        check_result(name, again[name][0], e, status=e.rerun_status)
        if e.status == "failed":
            assert again[name][0].reason == results[name][0].reason
    assert sum(r.embedded for rs in again.values() for r in rs) == 0
    check_index(services, expect, {})


def test_oversized_file_is_refused_without_reading_it(
    services: Services, corpus: tuple[Path, dict[str, Expect]], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, expect = corpus
    big = folder / "too_big.txt"
    opened: list[Path] = []
    real_open, real_read_bytes = Path.open, Path.read_bytes

    def spy_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        opened.append(self)
        return real_open(self, *args, **kwargs)

    def spy_read_bytes(self: Path) -> bytes:
        opened.append(self)
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "open", spy_open)
    monkeypatch.setattr(Path, "read_bytes", spy_read_bytes)
    r = services.indexer.ingest_file(big)
    check_result("too_big.txt", r, expect["too_big.txt"])
    assert big not in opened
    assert services.indexer.ingest_file(folder / "guide.md").status == "indexed"
    assert folder / "guide.md" in opened  # the spy does see reads


# --- (2) the same files uploaded, some under hostile names -------------------------------------
def _tree(root: Path) -> set[Path]:
    return {Path(d) / n for d, dirs, files in os.walk(root) for n in dirs + files}


def test_uploads_of_hostile_files(services: Services, corpus: tuple[Path, dict[str, Expect]], tmp_path: Path) -> None:
    folder, expect = corpus
    home = services.settings.home_dir
    outside_before = _tree(tmp_path) - _tree(home)
    uploads = [(e.upload_as or n, (folder / n).read_bytes()) for n, e in expect.items()]
    uploads.append((DUPLICATE, (folder / DUPLICATE).read_bytes()))

    results = services.upload(uploads).results

    assert len(results) == len(uploads)
    stored_as = {n: e.stored_as for n, e in expect.items() if e.stored_as}
    for (name, e), r in zip(expect.items(), results, strict=False):
        assert r.source == stored_as.get(name, name)
        check_result(name, r, e)
    assert results[-1].status == "unchanged"
    check_index(services, expect, stored_as)

    # nothing escaped RAG_HOME, nothing kept a raw hostile name
    written = _tree(home)
    assert written, "the index lives under RAG_HOME"
    for p in written:
        assert p.resolve().is_relative_to(home), p
        assert not UNSAFE.search(p.name), p
    for d in services.registry.documents():
        assert not UNSAFE.search(d.source)
        assert Path(d.stored_path).resolve().is_relative_to(services.settings.files_dir)
    assert _tree(tmp_path) - _tree(home) == outside_before  # the folders above home got nothing new
    for up in (home.parent, home.parent.parent, home.parent.parent.parent):
        assert not (up / "x.md").exists()


# --- (3) the Documents page: hostile files mixed with good ones --------------------------------
@pytest.fixture
def page_services(services: Services, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    monkeypatch.setattr(state, "_secret", lambda name: None)  # no secrets.toml from the machine
    state.use_services(services)
    yield services
    state.use_services(None)


def _documents_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state[state.ADMIN_OK] = True  # uploads need the admin (signed in on the Admin page)
    return at.run().switch_page("rag/ui/documents.py").run()


def _plain(markdown: str) -> str:
    return markdown.replace("\\", "")  # errors are Markdown-escaped (zip\_bomb.docx)


def test_documents_page_with_hostile_uploads(page_services: Services, corpus: tuple[Path, dict[str, Expect]]) -> None:
    folder, expect = corpus
    # Streamlit itself refuses names with NUL bytes and types the uploader does not list
    # (see the next test); everything else reaches our code.
    sent = {n: e for n, e in expect.items() if e.walked}
    at = _documents_page()
    at.file_uploader[0].set_value(
        [
            ((e.upload_as or n).replace("\x00", ""), (folder / n).read_bytes(), "application/octet-stream")
            for n, e in sent.items()
        ]
    )
    at.run()
    at.button(key="index_files").click().run()
    assert runner_for(page_services).wait_idle(60), "the upload never finished"
    at.run()

    assert not at.exception, [e.value for e in at.exception]
    good = [(e.stored_as or n) for n, e in sent.items() if e.status == "indexed"]
    bad = {n: e for n, e in sent.items() if e.status == "failed"}
    summary = "\n".join(str(m.value) for m in at.markdown)
    assert f"{len(good)} indexed, {len(bad)} failed" in summary
    assert sorted(at.dataframe[0].value["File"]) == sorted(good)  # results of this upload
    errors = [_plain(str(e.value)) for e in at.error]
    assert len(errors) == len(bad)
    for name, e in bad.items():
        shown = [m for m in errors if m.startswith(name + ":")]
        assert shown and re.search(e.reason, shown[0]), (name, errors)
    assert sorted(Path(d.source).name for d in page_services.registry.documents()) == sorted(good)
    assert page_services.indexer.missing_chunks() == 0


@pytest.mark.parametrize(
    ("name", "message"),
    [("evil\x00name.md", "null bytes"), ("setup.exe", "Invalid file extension"), ("README", "Invalid file extension")],
)
def test_streamlit_refuses_forbidden_upload_names(page_services: Services, name: str, message: str) -> None:
    """Pins today's behaviour: Streamlit refuses these while restoring the widget's value,
    before any page code runs (a browser's file picker never sends them; a hand-made request
    can), so nothing is indexed and the page shows an error; with ``client.showErrorDetails =
    "none"`` (.streamlit/config.toml) Streamlit's own message stays in the server log."""
    at = _documents_page()
    at.file_uploader[0].set_value([(name, b"some text", "text/plain"), ("fine.txt", b"fine text", "text/plain")])
    at.run()
    assert at.exception
    assert not [e for e in at.exception if message in str(e.value)]
    assert page_services.registry.documents() == []
    assert not [p for p in _tree(page_services.settings.home_dir) if UNSAFE.search(p.name)]
