"""Follow-up questions: rewritten from the last exchange, searched for as rewritten, shown to
the user, and kept by the CLI's --history file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.__main__ import _remember, read_history
from rag.followup import Turn
from rag.services import Services
from tests.conftest import make_settings
from tests.fakes import EchoGenerator, HashEmbedder

EIFFEL = "The Eiffel Tower was completed in 1889. The Eiffel Tower is repainted every seven years."
LOUVRE = "The Louvre palace was completed long before it became a museum in 1793."


def _services(tmp_path: Path) -> Services:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "eiffel.txt").write_text(EIFFEL)
    (docs / "louvre.txt").write_text(LOUVRE)
    s = Services(make_settings(tmp_path / "home", min_relevance=-1.0), HashEmbedder(), EchoGenerator())
    s.ingest([docs])
    return s


def test_a_follow_up_is_searched_for_as_a_standalone_question(tmp_path: Path) -> None:
    s = _services(tmp_path)
    first = s.ask("When was the Eiffel Tower completed?")
    history = [Turn(first.question, first.text)]
    follow = s.ask("How often is it repainted?", history=history)
    assert follow.question == "How often is it repainted?"
    assert follow.searched_for == "How often is the Eiffel Tower repainted?"
    assert "the Eiffel Tower repainted" in s.generator.prompts[-1][-1]["content"]  # type: ignore[attr-defined]
    assert follow.to_json()["searched_for"] == follow.searched_for


def test_a_question_that_stands_alone_is_searched_for_as_asked(tmp_path: Path) -> None:
    s = _services(tmp_path)
    history = [Turn("When was the Eiffel Tower completed?", "In 1889 [1].")]
    answer = s.ask("When did the Louvre become a museum?", history=history)
    assert answer.searched_for == "" and answer.question == "When did the Louvre become a museum?"


def test_the_cli_history_file_grows_by_one_exchange_per_question(tmp_path: Path) -> None:
    path = tmp_path / "conversation.jsonl"
    assert read_history(path) == []
    _remember(path, "When was the Eiffel Tower completed?", "In 1889 [1].")
    _remember(path, "How often is it repainted?", "Every seven years [1].")
    assert read_history(path) == [
        Turn("When was the Eiffel Tower completed?", "In 1889 [1]."),
        Turn("How often is it repainted?", "Every seven years [1]."),
    ]
    path.write_text(json.dumps({"q": 1}) + "\n")
    with pytest.raises(SystemExit, match=r"conversation\.jsonl:1 is not"):
        read_history(path)
