"""Attacks through what documents and the model write, and through the app's own server config."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

from streamlit.testing.v1 import AppTest

from rag.config import Settings
from rag.pipeline import MAX_QUESTION_CHARS
from rag.ui.widgets import md_escape
from tests.fakes import EchoGenerator
from tests.ui.test_app_pages import MakeServices, texts

REPO = Path(__file__).resolve().parents[2]
BEACON = "![pixel](https://tracker.example/beacon.png?who=me)"
# Markdown that would render as an image or a link: "![" / "[" ... "](" not backslash-escaped.
ACTIVE_MARKDOWN = re.compile(r"(?<!\\)\]\(")


def test_a_remote_image_in_a_document_never_renders(make_services: MakeServices, app: AppTest) -> None:
    """A document sentence with a remote image, quoted by the model into its answer
    (EchoGenerator copies source [1]'s first sentence): the answer shows the Markdown as text, so
    the browser never fetches the image (a zero-click beacon)."""
    services = make_services()
    doc = f"The castle gate opens at nine {BEACON} every morning.".encode()
    assert services.indexer.ingest_bytes(doc, "castle.txt").status == "indexed"
    at = app.run()
    at.chat_input[0].set_value("When does the castle gate open?").run()
    assert not at.exception
    shown = [m for m in texts(at.markdown) + texts(at.info) if "grounded-citation" not in m]
    answers = [m for m in shown if "nine" in m]
    assert answers, shown
    answer = answers[0]
    assert "tracker.example" in answer  # shown, as text
    assert not ACTIVE_MARKDOWN.search(answer), answer


def test_escaping_piece_by_piece_is_escaping_the_whole() -> None:
    """The streamed draft is escaped piece by piece as it arrives (rag/ui/chat.py)."""
    pieces = ["The gate ![pix", "el](https://tracker.", "example/b.png) [1", "]. $5 `x` [a](https://phish.example)"]
    escaped = "".join(md_escape(p) for p in pieces)
    assert escaped == md_escape("".join(pieces))
    assert not ACTIVE_MARKDOWN.search(escaped)


def test_a_huge_question_is_refused_before_any_model(make_services: MakeServices) -> None:
    class Exploding(EchoGenerator):
        def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
            raise AssertionError("the generator must not see the question")

    services = make_services(generator=Exploding())
    answer = services.pipeline.ask("why " * 250_000)  # 1 MB
    assert answer.abstained and not answer.sources
    assert f"at most {MAX_QUESTION_CHARS:,} characters" in answer.text


def test_the_server_listens_on_this_machine_only_and_bounds_uploads() -> None:
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    server = config["server"]
    assert server["address"] == "127.0.0.1"
    assert "*" not in server["allowedHosts"]
    # Streamlit holds an upload in memory before the app sees it: its cap is the app's own.
    assert server["maxUploadSize"] == Settings.model_fields["max_file_mb"].default
    assert config["client"]["showErrorDetails"] == "none"
