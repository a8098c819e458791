"""Shared fixtures: settings in a temp dir, fake engines, and the real packaged models
loaded once per test session (sentence-transformers' pattern)."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag.config import REPO_ROOT, Settings
from rag.services import Services
from rag.tuning import Tuning
from tests.fakes import EchoGenerator, HashEmbedder

# Converted models are cached across test runs (the GGUF conversion takes ~30 s).
MODEL_CACHE = REPO_ROOT / ".cache" / "models"
SAMPLES = REPO_ROOT / "samples"

NETGUARD = Path(__file__).parent / "netguard"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# No test may touch the network: in this process, and in every Python subprocess it starts.
_paths = (str(NETGUARD), str(REPO_ROOT), os.environ.get("PYTHONPATH"))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in _paths if p)
sys.path.insert(0, str(NETGUARD))
import sitecustomize  # noqa: E402  (the guard installs itself on import)

sitecustomize.install()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings from the developer's shell must not leak into tests."""
    for key in list(os.environ):
        if key.startswith("RAG_"):
            monkeypatch.delenv(key)


TUNING_FIELDS = {f.name for f in dataclasses.fields(Tuning)}


def make_settings(home: Path, **overrides: Any) -> Settings:
    """Settings for a test. The reranker is off unless a test asks for it (``reranker_model=...``
    or the ``real_reranker`` fixture), so fake-engine tests never load a real model.
    Names of :class:`rag.tuning.Tuning` constants (``min_relevance=0.0``) go into ``tuning``."""
    overrides.setdefault("reranker_model", "none")
    tuned = {k: overrides.pop(k) for k in list(overrides) if k in TUNING_FIELDS}
    if tuned:
        overrides["tuning"] = dataclasses.replace(Tuning(), **tuned)
    return Settings(home=home, model_cache=MODEL_CACHE, _env_file=None, **overrides)  # type: ignore[call-arg]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "home")


@pytest.fixture
def fake_services(settings: Settings) -> Services:
    return Services(settings, embedder=HashEmbedder(), generator=EchoGenerator())


@pytest.fixture(scope="session")
def real_embedder() -> Any:
    from rag.embed import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(make_settings(REPO_ROOT / ".cache" / "unused"))


@pytest.fixture(scope="session")
def real_generator() -> Any:
    from rag.generate import TransformersGenerator

    return TransformersGenerator(make_settings(REPO_ROOT / ".cache" / "unused"))


@pytest.fixture(scope="session")
def real_reranker() -> Any:
    from rag.rerank import CrossEncoderReranker

    return CrossEncoderReranker(make_settings(REPO_ROOT / ".cache" / "unused", reranker_model="packaged"))


@pytest.fixture
def real_services(
    settings: Settings, real_embedder: Any, real_generator: Any, real_reranker: Any
) -> Iterator[Services]:
    yield Services(settings, embedder=real_embedder, generator=real_generator, reranker=real_reranker)
