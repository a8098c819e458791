"""The admin password `make run` generates: printed once, stored hashed and owner-only."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from rag import credentials
from rag.auth import check_password
from rag.config import Settings


@pytest.fixture(autouse=True)
def _no_secrets_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(credentials, "SECRETS_TOML", tmp_path / "absent.toml")
    monkeypatch.setattr(credentials, "configured_secret", lambda name, secrets_toml=tmp_path / "absent.toml": None)


def test_first_run_generates_a_password_and_keeps_only_its_hash(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    password = credentials.write_admin_password(settings)
    assert password and len(password) >= 20
    path = credentials.admin_password_file(settings)
    stored = path.read_text().strip()
    assert password not in stored
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert check_password(password, stored)
    assert not check_password("guess", stored)
    assert credentials.stored_admin_hash(settings) == stored
    assert credentials.write_admin_password(settings) is None  # shown once, never again
    assert path.read_text().strip() == stored


def test_reset_replaces_it(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    first = credentials.write_admin_password(settings)
    second = credentials.write_admin_password(settings, reset=True)
    assert first and second and first != second
    stored = credentials.stored_admin_hash(settings) or ""
    assert check_password(second, stored) and not check_password(first, stored)


def test_an_operator_password_wins(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", admin_password=SecretStr("chosen"))
    assert credentials.write_admin_password(settings) is None
    assert not credentials.admin_password_file(settings).exists()


def test_main_prints_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RAG_ADMIN_PASSWORD", raising=False)
    monkeypatch.setattr(credentials, "get_settings", lambda: Settings())
    assert credentials.main([]) == 0
    first = capsys.readouterr().out
    assert "shown once" in first
    password = first.split("\n\n")[1].strip()
    assert check_password(password, credentials.stored_admin_hash(Settings()) or "")
    assert credentials.main([]) == 0
    assert password not in capsys.readouterr().out
