from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from rag.config import Settings


def test_env_prefix_and_types(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RAG_HOME", str(tmp_path))
    monkeypatch.setenv("RAG_TOP_K", "7")
    monkeypatch.setenv("RAG_ADMIN_PASSWORD", "s3cret")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.home_dir == tmp_path.resolve() and s.top_k == 7
    assert s.admin_password is not None and s.admin_password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)  # never printed by accident
    assert s.chroma_dir == tmp_path.resolve() / "chroma"
    assert s.model_cache_dir == tmp_path.resolve() / "models"


def test_defaults_are_offline_packaged_models() -> None:
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.embedding_model == "packaged" and s.llm_model == "packaged"
    assert s.admin_password is None


def test_overlap_must_be_smaller_than_chunk() -> None:
    with pytest.raises(ValidationError, match="RAG_CHUNK_OVERLAP_TOKENS"):
        Settings(chunk_tokens=50, chunk_overlap_tokens=50, _env_file=None)  # type: ignore[call-arg]


def test_every_field_is_documented() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, f"Settings.{name} has no description"
