"""Fixtures for the Streamlit AppTest tests: services built with fakes, injected per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from streamlit.testing.v1 import AppTest

import rag.ui.state as state
from rag.config import Settings
from rag.services import Services
from tests.fakes import EchoGenerator, HashEmbedder

APP = Path(__file__).resolve().parents[2] / "app.py"
MakeServices = Callable[..., Services]


@pytest.fixture(autouse=True)
def _isolated_ui(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No services override, a fresh sign-in brake and no secrets.toml leaking in from the machine."""
    monkeypatch.setattr(state, "_secret", lambda name: None)
    state._brake.clear()
    yield
    state.use_services(None)
    state._brake.clear()


@pytest.fixture
def make_services(tmp_path: Path) -> MakeServices:
    """Build :class:`Services` on fakes under ``tmp_path`` and inject them into the app."""

    def make(
        password: str | None = None,
        generator: EchoGenerator | None = None,
        embedding_model: str = HashEmbedder.name,
        **overrides: Any,
    ) -> Services:
        settings = Settings(
            home=tmp_path / "home",
            admin_password=SecretStr(password) if password is not None else None,
            embedding_model=embedding_model,
            reranker_model="none",  # fake engines only; the real reranker is tested elsewhere
            **overrides,
        )
        services = Services(settings, embedder=HashEmbedder(), generator=generator or EchoGenerator())
        state.use_services(services)
        return services

    return make


@pytest.fixture
def app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60)
