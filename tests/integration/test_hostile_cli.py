"""`python -m ingest` over the hostile corpus (tests/hostile.py), as a user runs it: real
embedder, separate processes. Bad files are reported one per line; the good ones still index."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rag.config import REPO_ROOT
from tests.conftest import MODEL_CACHE
from tests.hostile import MAX_FILE_MB, Expect, write_hostile_corpus

pytestmark = pytest.mark.slow

LINE = re.compile(r"^(indexed|unchanged|FAILED)\s+(\S+?):?(?:  \(| |$)(.*)$")


def _ingest(paths: list[Path], home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(
        RAG_HOME=str(home), RAG_MODEL_CACHE=str(MODEL_CACHE), RAG_MAX_FILE_MB=str(MAX_FILE_MB), HF_HUB_OFFLINE="1"
    )
    return subprocess.run(
        [sys.executable, "-m", "ingest", "--quiet", *map(str, paths)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _results(stdout: str) -> dict[str, tuple[str, str]]:
    """File name -> (status word, rest of the line) for every per-file line."""
    out: dict[str, tuple[str, str]] = {}
    for line in stdout.splitlines():
        m = LINE.match(line)
        if m:
            out[Path(m.group(2)).name] = (m.group(1), m.group(3))
    return out


def _check(proc: subprocess.CompletedProcess[str], expect: dict[str, Expect], rerun: bool) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    got = _results(proc.stdout)
    assert set(got) == set(expect), proc.stdout
    for name, e in expect.items():
        word, rest = got[name]
        status = e.rerun_status if rerun else e.status
        assert word == {"indexed": "indexed", "unchanged": "unchanged", "failed": "FAILED"}[status], (name, word)
        if status == "failed":
            assert re.search(e.reason, rest), f"{name}: {rest!r} does not match {e.reason!r}"
    failed = sum(e.status == "failed" for e in expect.values())
    ok = len(expect) - failed
    summary = f"{len(expect)} files: {0 if rerun else ok} indexed, {ok if rerun else 0} unchanged, {failed} failed"
    assert summary in proc.stdout, proc.stdout


def test_cli_reports_hostile_files_and_indexes_the_rest(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    expect = write_hostile_corpus(corpus)
    home = tmp_path / "home"
    walked = {n: e for n, e in expect.items() if e.walked}
    unsupported = [corpus / n for n, e in expect.items() if not e.walked]

    # a folder: unsupported types inside it are passed over, and counted in one line
    first = _ingest([corpus], home)
    _check(first, walked, rerun=False)
    assert f"skipped    {len(unsupported)} file(s) of unsupported type in folders" in first.stdout
    assert not [p for p in unsupported if f"FAILED     {p.name}" in first.stdout]

    # again, naming the unsupported files too: the good files are unchanged, the rest fail again
    second = _ingest([corpus, *unsupported], home)
    _check(second, expect, rerun=True)
    assert "0 chunks embedded" in second.stdout

    # nothing was written outside RAG_HOME
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "home"]
