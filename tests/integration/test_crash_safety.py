"""SIGKILL the indexer at random points; nothing indexed before may be lost.

Each round starts `python -m tests.crash_worker` (ingest of new and edited files, or a full
re-index), kills it with SIGKILL after a random delay, then checks in a fresh process that
every document indexed before is still answerable, that the registry and Chroma agree
(after the automatic clean-up), and that no half-built collection is left. The last run
is allowed to finish and must complete the job.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.config import REPO_ROOT

pytestmark = pytest.mark.slow

# At least ROUNDS rounds, and more (up to MAX_ROUNDS) until MID_WORK kills have hit a running
# worker: on a fast machine a worker may finish before its delay is up (CI once saw 9 of 12).
ROUNDS = 12
MID_WORK = 10
MAX_ROUNDS = 24
SEED = int(os.environ.get("CRASH_SEED", "20261122"))


def _doc(i: int, version: int = 0) -> str:
    """Six paragraphs, each carrying the document's unique word ``uniq{i}x``."""
    paras = [" ".join([f"uniq{i}x", *(f"w{i}_{j}_{k}_v{version}" for k in range(30))]) + "." for j in range(6)]
    return "\n\n".join(paras)


def _worker(home: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.crash_worker", str(home), *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _verify(home: Path, names: list[str]) -> dict[str, object]:
    p = _worker(home, "verify", *names)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    report: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return report


def test_sigkill_during_ingest_and_reindex_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    home, docs = tmp_path / "home", tmp_path / "docs"
    docs.mkdir()
    for i in range(10):
        (docs / f"base{i:02d}.md").write_text(_doc(i))
    first = _worker(home, "ingest", str(docs))
    assert first.wait(timeout=300) == 0, first.stderr.read() if first.stderr else ""
    safe = [f"base{i:02d}.md" for i in range(10)]  # indexed before any crash: must survive all
    kills_mid_work = 0
    log: list[str] = []
    for r in range(MAX_ROUNDS):
        if r >= ROUNDS and kills_mid_work >= MID_WORK:
            break
        if r % 3 == 2:
            args = ["reindex"]
        else:
            for k in range(4):  # new files, plus an edit of a base file
                n = 100 + r * 4 + k
                (docs / f"new{n}.md").write_text(_doc(n))
            (docs / f"base{r % 10:02d}.md").write_text(_doc(r % 10, version=r + 1))
            args = ["ingest", str(docs)]
        p = _worker(home, *args)
        delay = rng.uniform(1.5, 5.0)
        time.sleep(delay)
        alive = p.poll() is None
        p.send_signal(signal.SIGKILL)
        p.wait()
        kills_mid_work += alive
        report = _verify(home, safe)
        log.append(
            f"round {r}: {args[0]} killed after {delay:.2f}s ({'mid-work' if alive else 'already done'}): "
            f"removed {report['removed']}"
        )
        assert report["missing"] == 0, (log, report)
        assert all(report["answerable"].values()), (log, report)  # type: ignore[attr-defined]
        assert report["chroma_chunks"] == report["registry_chunks"], (log, report)
        assert report["leftover_collections"] == [], (log, report)
    assert kills_mid_work >= MID_WORK, log

    final = _worker(home, "ingest", str(docs))
    assert final.wait(timeout=300) == 0
    report = _verify(home, [f.name for f in sorted(docs.iterdir())])
    assert all(report["answerable"].values()), report  # type: ignore[attr-defined]
    assert len(report["documents"]) == len(list(docs.iterdir()))  # type: ignore[arg-type]
    assert report["chroma_chunks"] == report["registry_chunks"]
    print("\n".join(log))


# Indexes the folder argv[2] into argv[1], and SIGKILLs itself right after the new chunks went
# into Chroma, where the registry write would come.
_KILLED_BEFORE_REGISTRY = """
import os, signal, sys
from pathlib import Path
from ingest.registry import Registry
from tests.crash_worker import services
s = services(Path(sys.argv[1]))
Registry.put_many = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
s.indexer.ingest_paths([Path(sys.argv[2])])
"""


def test_sigkill_between_chroma_and_registry_leaves_nothing_answerable(tmp_path: Path) -> None:
    from tests.crash_worker import services

    home, base, new = tmp_path / "home", tmp_path / "base", tmp_path / "new"
    base.mkdir()
    new.mkdir()
    (base / "base00.md").write_text(_doc(0))
    (new / "new01.md").write_text(_doc(1))
    assert _worker(home, "ingest", str(base)).wait(timeout=300) == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_BEFORE_REGISTRY, str(home), str(new)], cwd=REPO_ROOT, env=env, timeout=300
    )
    assert killed.returncode == -signal.SIGKILL

    with open(home / "index.lock", "w") as lock:  # as if a writer were busy: start-up leaves Chroma alone
        fcntl.flock(lock, fcntl.LOCK_EX)
        s = services(home)
        store = s.indexer.active_store()
        assert store.count() > len(s.registry.chunk_ids())  # the killed run's chunks are in Chroma
        probe = _doc(1).split("\n\n")[2]
        [raw] = store.search(s.embedder.embed_query(probe), 1)
        assert raw.chunk.source.endswith("new01.md")  # Chroma alone would answer from it...
        hits = s.retriever.dense.retrieve(probe, 10) + s.retriever.retrieve(probe, 10)
        assert not any(h.chunk.source.endswith("new01.md") for h in hits)  # ...retrieval never does
        assert s.retriever.dense.retrieve(_doc(0).split("\n\n")[2], 10)  # the indexed document still is
        fcntl.flock(lock, fcntl.LOCK_UN)
    removed = s.indexer.reconcile_if_needed()
    assert removed is not None and removed["chunks"] > 0 and removed["files"] == 1  # chunks and stored copy
    assert store.all_ids() == s.registry.chunk_ids()
