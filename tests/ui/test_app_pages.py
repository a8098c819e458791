"""The three pages driven through Streamlit's AppTest, on fake engines."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

import rag.ui.state as state
from ingest.pipeline import EMBEDDER_KEY
from rag.jobs import runner_for
from rag.prompting import abstain_message
from rag.services import Services
from tests.fakes import EchoGenerator

MakeServices = Callable[..., Services]  # the make_services fixture (tests/ui/conftest.py)
PASSWORD = "correct horse"

EIFFEL = (
    b"The Eiffel Tower was completed in 1889 for the World's Fair. "
    b"About 2.5 million rivets hold the Eiffel Tower together.\n\n"
    b"It is repainted about every 7 years."
)


def markdown(at: AppTest) -> str:
    return "\n".join(str(m.value) for m in at.markdown)


def texts(elements: Iterable[Any]) -> list[str]:
    return [str(e.value) for e in elements]


def documents_page(at: AppTest, admin: bool = False) -> AppTest:
    if admin:
        at.session_state[state.ADMIN_OK] = True  # signed in on the Admin page
    return at.run().switch_page("rag/ui/documents.py").run()


def settled(at: AppTest, services: Services) -> AppTest:
    """Rerun once the background writes the page started have finished."""
    assert runner_for(services).wait_idle(30), "a background write never finished"
    return at.run()


def delete_button(at: AppTest) -> Any:
    return next(b for b in at.button if b.label == "Delete")


def admin_page(at: AppTest) -> AppTest:
    return at.run().switch_page("rag/ui/admin.py").run()


def sign_in(at: AppTest, password: str) -> AppTest:
    at.text_input(key="admin_login_password").input(password)
    return at.button[0].click().run()


def index_eiffel(services: Services) -> None:
    assert services.indexer.ingest_bytes(EIFFEL, "eiffel_tower.txt").status == "indexed"


# --- (1) documents: upload and list ------------------------------------------------------------
def test_upload_indexes_files_and_lists_them(make_services: MakeServices, app: AppTest) -> None:
    services = make_services(password=PASSWORD)
    at = documents_page(app, admin=True)
    assert not at.exception
    assert "Nothing is indexed yet" in "".join(texts(at.info))
    at.file_uploader[0].set_value(
        [
            ("../../eiffel_tower.txt", EIFFEL, "text/plain"),
            ("broken.pdf", b"not a pdf at all", "application/pdf"),
        ]
    )
    at.run()
    at.button(key="index_files").click().run()
    settled(at, services)
    assert not at.exception
    assert "1 indexed, 1 failed" in markdown(at)
    results = at.dataframe[0].value
    assert list(results["File"]) == ["eiffel_tower.txt"]  # the directory part is gone
    assert list(results["Result"]) == ["indexed"]
    assert any("broken.pdf" in e for e in texts(at.error))
    table = at.dataframe[1].value
    assert list(table["Name"]) == ["eiffel_tower.txt"]
    assert [d.source for d in services.registry.documents()] == ["eiffel_tower.txt"]
    # results survive the next rerun; the uploader was emptied
    at.run()
    assert "1 indexed, 1 failed" in markdown(at)
    assert not at.file_uploader[0].value


def test_reupload_is_unchanged(make_services: MakeServices, app: AppTest) -> None:
    services = make_services(password=PASSWORD)
    index_eiffel(services)
    at = documents_page(app, admin=True)
    at.file_uploader[0].set_value(("eiffel_tower.txt", EIFFEL, "text/plain"))
    at.run()
    at.button(key="index_files").click().run()
    settled(at, services)
    assert "1 unchanged" in markdown(at)
    assert "new version" not in markdown(at).lower() + " ".join(texts(at.info)).lower()
    assert not at.error


def test_upload_sanitises_names_and_reports_progress(make_services: MakeServices) -> None:
    services = make_services()
    seen: list[tuple[int, int, str]] = []
    report = services.upload(
        [("C:\\Users\\me\\보고서.md", "# 보고서\n\n에펠탑은 1889년에 완공되었다.".encode()), ("x.txt", b"")],
        lambda done, total, msg: seen.append((done, total, msg)),
    )
    assert [(r.source, r.status) for r in report.results] == [("보고서.md", "indexed"), ("x.txt", "failed")]
    assert not any(r.replaced for r in report.results)
    assert seen == [(0, 2, "보고서.md"), (1, 2, "x.txt"), (2, 2, "done")]


def test_documents_page_lists_documents_indexed_elsewhere(make_services: MakeServices, app: AppTest) -> None:
    index_eiffel(make_services())
    at = documents_page(app)
    table = at.dataframe[0].value
    assert list(table["Name"]) == ["eiffel_tower.txt"]
    assert list(table["Pages"]) == [1]


# --- (2) chat: a cited answer ------------------------------------------------------------------
def test_chat_answers_with_citations(make_services: MakeServices, app: AppTest) -> None:
    index_eiffel(make_services())
    at = app.run()
    at.chat_input[0].set_value("When was the Eiffel Tower completed?").run()
    assert not at.exception
    md = markdown(at)
    assert "[1]" in md
    assert "eiffel_tower.txt" in md
    assert "<mark>" in md
    assert "1889" in md
    assert any("retrieve" in c and "ms" in c for c in texts(at.caption))
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    # the conversation survives a rerun
    at.run()
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    assert "<mark>" in markdown(at)


def test_chat_document_filter_limits_the_sources(make_services: MakeServices, app: AppTest) -> None:
    services = make_services()
    index_eiffel(services)
    louvre = b"The Louvre in Paris was completed as a museum in 1793. The Eiffel Tower is nearby."
    assert services.indexer.ingest_bytes(louvre, "louvre.txt").status == "indexed"
    at = app.run()
    only = next(d.doc_id for d in services.registry.documents() if d.source == "louvre.txt")
    at.sidebar.multiselect[0].set_value([only]).run()
    at.chat_input[0].set_value("When was the Eiffel Tower completed?").run()
    assert not at.exception
    md = markdown(at)
    assert "louvre.txt" in md and "eiffel_tower.txt" not in md


def test_chat_escapes_document_html(make_services: MakeServices, app: AppTest) -> None:
    services = make_services()
    evil = b"The castle gate opens at <script>alert('x')</script> nine. <img src=x onerror=alert(1)> Castle."
    assert services.indexer.ingest_bytes(evil, "castle.txt").status == "indexed"
    at = app.run()
    at.chat_input[0].set_value("When does the castle gate open?").run()
    passages = [m for m in texts(at.markdown) if "grounded-citation" in m]
    assert passages, markdown(at)
    assert "<script" not in passages[0]
    assert "<img" not in passages[0]
    assert "&lt;script&gt;" in passages[0]


def test_chat_abstains_in_info_style(make_services: MakeServices, app: AppTest) -> None:
    abstain = abstain_message()
    index_eiffel(make_services(generator=EchoGenerator(reply=abstain)))
    at = app.run()
    at.chat_input[0].set_value("When was the Eiffel Tower completed?").run()
    assert abstain in texts(at.info)
    assert "<mark>" not in markdown(at)


def test_chat_explains_extractive_fallback(make_services: MakeServices, app: AppTest) -> None:
    unbacked = EchoGenerator(reply="Bananas sing opera on Mars every Tuesday [1].")
    index_eiffel(make_services(generator=unbacked))
    at = app.run()
    at.chat_input[0].set_value("When was the Eiffel Tower completed?").run()
    assert not at.exception
    captions = " ".join(texts(at.caption))
    assert "quotes the best-matching source" in captions
    assert any("removed because no source supports" in e.label for e in at.expander)


# --- (3) chat: empty index ---------------------------------------------------------------------
def test_chat_with_empty_index_shows_hint(make_services: MakeServices, app: AppTest) -> None:
    make_services()
    at = app.run()
    assert not at.exception
    assert any("No documents are indexed yet" in t for t in texts(at.info))
    assert len(at.page_link) == 1
    at.chat_input[0].set_value("Anything?").run()
    assert not at.chat_message  # no answer attempted
    assert any("No documents are indexed yet" in t for t in texts(at.info))


# --- (4) admin disabled ------------------------------------------------------------------------
def test_admin_without_password_is_disabled(make_services: MakeServices, app: AppTest) -> None:
    make_services(password=None)
    at = admin_page(app)
    assert not at.exception
    assert any("RAG_ADMIN_PASSWORD" in w and "secrets.toml" in w for w in texts(at.warning))
    assert not at.text_input
    assert not [b for b in at.button if b.key == "reindex"]


# --- (5) admin login and re-index --------------------------------------------------------------
def test_admin_wrong_then_right_password_and_reindex(make_services: MakeServices, app: AppTest) -> None:
    services = make_services(password=PASSWORD)
    index_eiffel(services)
    at = admin_page(app)
    sign_in(at, "wrong")
    assert "Wrong password" in texts(at.error)
    assert not [b for b in at.button if b.key == "reindex"]
    assert "wrong" not in markdown(at)
    assert "admin_ok" not in at.session_state

    sign_in(at, PASSWORD)
    assert not at.exception
    assert at.session_state["admin_ok"] is True
    assert [m.value for m in at.metric] == ["1", "1"]
    assert "fake-hash" in markdown(at)
    assert "chunks_g1" in markdown(at)
    assert not at.warning  # index and configuration use the same embedder
    at.button(key="reindex").click().run()
    settled(at, services)
    assert not at.exception
    assert any("Re-indexed 1 document(s)" in s for s in texts(at.success))
    assert "chunks_g2" in markdown(at)  # the page reran: statistics show the new collection
    assert services.stats().collection == "chunks_g2"


def test_admin_rate_limits_wrong_passwords(make_services: MakeServices, app: AppTest) -> None:
    make_services(password=PASSWORD)
    at = admin_page(app)
    for _ in range(5):
        sign_in(at, "wrong")
    assert any("try again in" in e for e in texts(at.error))
    sign_in(at, PASSWORD)  # refused while limited, even though it is right
    assert any("Too many wrong passwords" in e for e in texts(at.error))
    assert not [b for b in at.button if b.key == "reindex"]
    state.login_brake().reset(state.client_key("admin"))
    sign_in(at, PASSWORD)
    assert [b for b in at.button if b.key == "reindex"]


def test_admin_password_from_secrets(
    make_services: MakeServices, app: AppTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.undo()  # the real st.secrets lookup
    make_services(password=None)
    app.secrets["admin_password"] = "from-secrets"
    at = admin_page(app)
    assert not at.warning
    sign_in(at, "from-secrets")
    assert [b for b in at.button if b.key == "reindex"]


def test_admin_warns_when_embedder_changed(make_services: MakeServices, app: AppTest) -> None:
    services = make_services(password=PASSWORD)
    services.registry.set_meta(EMBEDDER_KEY, "an-older-model")  # the index was built with another model
    at = sign_in(admin_page(app), PASSWORD)
    assert any("re-index needed" in w for w in texts(at.warning))


# --- (6) delete needs the password -------------------------------------------------------------
def test_delete_requires_password(make_services: MakeServices, app: AppTest) -> None:
    services = make_services(password=PASSWORD)
    index_eiffel(services)
    at = documents_page(app)
    at.selectbox[0].select_index(0)
    at.text_input(key="delete_password").input("wrong")
    delete_button(at).click().run()
    assert "Wrong password" in texts(at.error)
    assert len(services.registry.documents()) == 1

    at.selectbox[0].select_index(0)
    at.text_input(key="delete_password").input(PASSWORD)
    delete_button(at).click().run()
    assert not at.exception
    assert services.registry.documents() == []
    assert any("Deleted eiffel" in s for s in texts(at.success))
    assert "Nothing is indexed yet" in "".join(texts(at.info))


def test_delete_without_admin_password_explains(make_services: MakeServices, app: AppTest) -> None:
    index_eiffel(make_services(password=None))
    at = documents_page(app)
    assert any("RAG_ADMIN_PASSWORD" in i for i in texts(at.info))
    assert not at.selectbox
    assert not at.button  # no upload (nobody may write) and no delete


def test_signed_in_admin_deletes_without_retyping(make_services: MakeServices, app: AppTest) -> None:
    services = make_services(password=PASSWORD)
    index_eiffel(services)
    at = sign_in(admin_page(app), PASSWORD)
    at.switch_page("rag/ui/documents.py").run()
    assert not at.text_input  # this session already proved it knows the password
    delete_button(at).click().run()  # nothing selected
    assert any("Choose a document" in w for w in texts(at.warning))
    at.selectbox[0].select_index(0)
    delete_button(at).click().run()
    assert services.registry.documents() == []
