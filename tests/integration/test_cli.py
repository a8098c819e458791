"""The two command-line tools, run as a user runs them (real models, separate processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.config import REPO_ROOT
from tests.conftest import MODEL_CACHE, SAMPLES

pytestmark = pytest.mark.slow


def _run(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_HOME=str(home), RAG_MODEL_CACHE=str(MODEL_CACHE), HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_ingest_exit_codes_and_ask_json(tmp_path: Path) -> None:
    home = tmp_path / "home"
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4 truncated")

    usage = _run(["-m", "ingest", str(tmp_path / "missing")], home)
    assert usage.returncode == 2 and "no such file" in usage.stderr

    mixed = _run(["-m", "ingest", "--quiet", str(SAMPLES / "eiffel_tower.pdf"), str(bad)], home)
    assert mixed.returncode == 1, mixed.stdout + mixed.stderr
    assert "indexed" in mixed.stdout and "FAILED" in mixed.stdout and "bad.pdf" in mixed.stdout

    again = _run(["-m", "ingest", "--quiet", str(SAMPLES / "eiffel_tower.pdf")], home)
    assert again.returncode == 0 and "unchanged" in again.stdout

    ask = _run(["-m", "rag", "ask", "When was the Eiffel Tower completed?", "--json"], home)
    assert ask.returncode == 0, ask.stderr
    out = json.loads(ask.stdout.strip().splitlines()[-1])
    assert set(out) >= {"answer", "abstained", "citations", "timings_ms"}
    assert out["abstained"] is False and "1889" in out["answer"]
    c = out["citations"][0]
    assert set(c) >= {"n", "source", "page", "start", "end", "text"}
    assert c["source"].endswith("eiffel_tower.pdf") and c["page"] == 1
    assert f"[{c['n']}]" in out["answer"]
    assert set(out["timings_ms"]) >= {"retrieve", "generate"}
