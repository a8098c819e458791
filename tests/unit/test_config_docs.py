"""docs/configuration.md is generated from the settings (rag/config_docs.py) and must match them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag import config_docs
from rag.config import Settings


def test_configuration_doc_is_up_to_date() -> None:
    path = config_docs.DOC_PATH
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    assert current == config_docs.render(), (
        "docs/configuration.md is out of date with rag/config.py: run `python -m rag.config_docs` "
        "(or `make docs`) and commit the result"
    )


def test_every_setting_is_listed_once_with_its_description() -> None:
    text = config_docs.render()
    for name, field in Settings.model_fields.items():
        rows = [line for line in text.splitlines() if line.startswith(f"| `RAG_{name.upper()}` |")]
        assert len(rows) == (0 if field.exclude else 1), name
        assert field.description, f"RAG_{name.upper()} has no description in rag/config.py"


def test_the_settings_are_few_and_tuned_constants_stay_out_of_the_environment(monkeypatch: Any) -> None:
    """An operator reads ~35 settings; constants tuned on dev sets live in rag/tuning.py, and
    the environment cannot set them (only code can)."""
    assert len([f for f in Settings.model_fields.values() if not f.exclude]) <= 35
    monkeypatch.setenv("RAG_TUNING", '{"rrf_k": 1}')
    monkeypatch.setenv("RAG_RRF_K", "1")
    assert Settings(_env_file=None).tuning.rrf_k == 60.0  # type: ignore[call-arg]


class _Example(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EX_")

    # --- first group -------------------------------------------------------
    size: int = Field(default=3, ge=1, le=9, description="How many | of them.")
    mode: Literal["a", "b"] = Field(default="a", description="Which one, see <home>/x.")

    # --- second group ------------------------------------------------------
    where: Path | None = Field(default=None, description="A folder.")


class _Extended(_Example):
    extra: bool = Field(default=True, description="Defined outside the sections.")


def test_groups_follow_the_section_comments_and_unknown_fields_go_last() -> None:
    assert config_docs.sections(_Example) == [("first group", ["size", "mode"]), ("second group", ["where"])]
    # a subclass's source shows only its own field: the inherited ones still appear, under "Other"
    groups = dict(config_docs.sections(_Extended))
    assert sorted(name for names in groups.values() for name in names) == ["extra", "mode", "size", "where"]
    assert list(groups)[-1] == config_docs.OTHER


def test_rows_show_type_bounds_default_and_escaped_description() -> None:
    text = config_docs.render(_Example)
    assert "| `EX_SIZE` | integer, ≥ 1, ≤ 9 | `3` | How many \\| of them. |" in text
    assert "| `EX_MODE` | `a` / `b` | `a` | Which one, see &lt;home&gt;/x. |" in text
    assert "| `EX_WHERE` | path, or unset | unset | A folder. |" in text
    assert "## First group" in text and "## Second group" in text


def test_check_mode_reports_a_stale_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "configuration.md"
    assert config_docs.main(["--check", "--out", str(out)]) == 1
    assert "run `python -m rag.config_docs`" in capsys.readouterr().err
    assert config_docs.main(["--out", str(out)]) == 0
    assert config_docs.main(["--check", "--out", str(out)]) == 0
