"""Writes from the pages run as background jobs: clicks, page switches and closed tabs do not
abort them, a second re-index is refused, and only a session that may write can upload.

A click while a script runs makes Streamlit raise inside that script's thread at its next
``st`` call; AppTest does the same when a run exceeds its timeout (it requests a stop). So a
run that "times out" while a write holds the script thread is exactly a user's next click.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import SecretStr
from streamlit.testing.v1 import AppTest

import rag.ui.state as state
from rag.config import Settings
from rag.jobs import runner_for
from rag.services import Services
from rag.tuning import Tuning
from tests.fakes import EchoGenerator, HashEmbedder, Vectors

APP = Path(__file__).resolve().parents[2] / "app.py"
PASSWORD = "correct horse"
HOLD_S = 20.0  # a held embedder lets go after this long even if the test never releases it
CLICK_S = 5.0  # a click must come back well before the held job ends
DOCS = {f"doc{i}.txt": f"Document {i} says the tower number {i} is painted {i} times.".encode() for i in range(3)}


class GateEmbedder(HashEmbedder):
    """Blocks document embedding while ``hold`` is set, until ``release`` (or HOLD_S)."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = False
        self.fail = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        if self.fail:
            raise RuntimeError("the embedding device went away")
        if self.hold:
            self.entered.set()
            self.release.wait(HOLD_S)
        return super().embed_documents(texts)


@pytest.fixture
def gate() -> GateEmbedder:
    return GateEmbedder()


@pytest.fixture
def build(tmp_path: Path, gate: GateEmbedder) -> Callable[..., Services]:
    def make(writers: Literal["admin", "readers"] = "admin", password: str | None = PASSWORD) -> Services:
        settings = Settings(
            home=tmp_path / "home",
            admin_password=SecretStr(password) if password else None,
            reranker_model="none",
            writers=writers,
            tuning=Tuning(ingest_batch_chunks=1),  # one embedding call per document: a held job stops mid-way
        )
        services = Services(settings, embedder=gate, generator=EchoGenerator())
        state.use_services(services)
        return services

    return make


def new_tab() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60)


def page(at: AppTest, name: str, admin: bool = False) -> AppTest:
    if admin:
        at.session_state[state.ADMIN_OK] = True  # signed in (the sign-in form is tested elsewhere)
    return at.run().switch_page(f"rag/ui/{name}.py").run()


def messages(elements: Iterable[Any]) -> str:
    return "\n".join(str(e.value) for e in elements)


def prompt(at: AppTest) -> bool:
    """Run the page; True if it came back within CLICK_S. Otherwise AppTest stopped the run, as
    the user's next click would, and whatever the run was doing was cut short."""
    try:
        at.run(timeout=CLICK_S)
    except RuntimeError:  # "AppTest script run timed out": a write held the script thread
        return False
    return True


def click(at: AppTest, key: str) -> bool:
    at.button(key=key).click()
    return prompt(at)


def finished(services: Services) -> None:
    assert runner_for(services).wait_idle(HOLD_S + 10), "the background job never finished"


def index_docs(services: Services) -> None:
    for name, data in DOCS.items():
        assert services.indexer.ingest_bytes(data, name).status == "indexed"


def assert_complete(services: Services, collection: str) -> None:
    """Every document searchable in ``collection`` and no other collection left behind."""
    assert services.stats().collection == collection
    assert sorted(d.source for d in services.registry.documents()) == sorted(DOCS)
    assert services.indexer.missing_chunks() == 0
    assert services.catalog.names() == [collection]


# --- re-index --------------------------------------------------------------------------------
def test_click_during_reindex_does_not_abort_it(build: Callable[..., Services], gate: GateEmbedder) -> None:
    services = build()
    index_docs(services)
    at = page(new_tab(), "admin", admin=True)
    gate.hold = True
    answered = click(at, "reindex")
    assert gate.entered.wait(10), "the re-index never reached the embedder"
    answered &= prompt(at)  # a click elsewhere while the job is mid-way
    shown = [p.text for p in at.progress]
    answered &= prompt(at.switch_page("rag/ui/chat.py"))  # and a page switch
    gate.release.set()
    finished(services)
    assert_complete(services, "chunks_g2")
    assert answered, "a click waited for the re-index"
    assert any("re-index" in t.lower() for t in shown), f"no re-index progress shown: {shown}"
    at.switch_page("rag/ui/admin.py").run()
    assert not at.exception
    assert "Re-indexed 3 document(s)" in messages(at.success)


def test_second_reindex_while_one_runs_is_refused(build: Callable[..., Services], gate: GateEmbedder) -> None:
    services = build()
    index_docs(services)
    at = page(new_tab(), "admin", admin=True)
    other = page(new_tab(), "admin", admin=True)  # a second admin tab
    gate.hold = True
    assert click(at, "reindex")
    assert gate.entered.wait(10)
    assert click(other, "reindex")
    assert "already running" in messages(other.warning)
    assert "Wait for it to finish" in messages(other.warning)
    assert click(at, "reindex")
    assert "already running" in messages(at.warning)
    gate.release.set()
    finished(services)
    assert_complete(services, "chunks_g2")  # one re-index ran, not three


def test_failed_reindex_says_why_and_keeps_the_index(build: Callable[..., Services], gate: GateEmbedder) -> None:
    services = build()
    index_docs(services)
    at = page(new_tab(), "admin", admin=True)
    gate.fail = True
    assert click(at, "reindex")
    finished(services)
    at.run()
    assert "Re-index failed: RuntimeError: the embedding device went away" in messages(at.error)
    assert "answers as before" in messages(at.error)
    assert_complete(services, "chunks_g1")
    gate.fail = False
    assert click(at, "reindex")  # the failure does not block the next one
    finished(services)
    assert_complete(services, "chunks_g2")


# --- uploads ---------------------------------------------------------------------------------
def test_page_switch_during_upload_does_not_abort_it(build: Callable[..., Services], gate: GateEmbedder) -> None:
    services = build()
    at = page(new_tab(), "documents", admin=True)
    gate.hold = True
    at.file_uploader[0].set_value([(name, data, "text/plain") for name, data in DOCS.items()])
    at.run()
    answered = click(at, "index_files")
    assert gate.entered.wait(10)
    answered &= prompt(at.switch_page("rag/ui/chat.py"))
    gate.release.set()
    finished(services)
    assert_complete(services, "chunks_g1")
    assert answered, "a click waited for the upload"
    at.switch_page("rag/ui/documents.py").run()
    assert "3 indexed" in messages(at.markdown)


def test_upload_needs_a_writer(build: Callable[..., Services]) -> None:
    build()
    reader = page(new_tab(), "documents")
    assert not reader.file_uploader
    assert not [b for b in reader.button if b.key == "index_files"]
    assert "Admin page" in messages(reader.info)

    admin = page(new_tab(), "documents", admin=True)
    assert admin.file_uploader
    assert "Admin page" not in messages(admin.info)


def test_readers_upload_when_writers_are_readers(build: Callable[..., Services]) -> None:
    build(writers="readers")
    at = page(new_tab(), "documents")
    assert at.file_uploader


def test_upload_without_admin_password_says_how_to_enable_it(build: Callable[..., Services]) -> None:
    build(password=None)
    at = page(new_tab(), "documents")
    assert not at.file_uploader
    assert "RAG_ADMIN_PASSWORD" in messages(at.info)


def test_same_name_upload_reports_a_new_version(build: Callable[..., Services]) -> None:
    services = build()
    index_docs(services)
    at = page(new_tab(), "documents", admin=True)
    at.file_uploader[0].set_value(
        [
            ("doc0.txt", b"Document zero was rewritten: the tower is now painted blue.", "text/plain"),
            ("doc1.txt", DOCS["doc1.txt"], "text/plain"),  # same bytes: unchanged, not a new version
        ]
    )
    at.run()
    at.button(key="index_files").click().run()
    finished(services)
    at.run()
    shown = messages(at.markdown) + messages(at.info)
    assert "new version of doc0.txt" in shown.lower()
    assert "new version of doc1.txt" not in shown.lower()
    assert "1 indexed, 1 unchanged" in shown
