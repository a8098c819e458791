"""Memory at scale: the app process's RSS with every default model loaded over a ~100k-chunk
index, and through the BM25 rebuilds that every ingest and delete starts (target: <= 2 GiB, docs/performance.md).

    .venv/bin/python bench/memory.py [--home DIR] [--chunks 100000] [--questions 5]
                                     [--vectors random|minilm] [--json FILE]

1. **Index** (written once under ``DIR``, kept, resumable): the ``bench/scale.py`` corpus (real
   NFCorpus and SQuAD text plus synthetic documents), parsed, chunked and tokenised for BM25
   exactly as the app does it. With ``--vectors random`` (the default) each chunk's vector is a
   random unit vector instead of MiniLM's: memory does not depend on the vectors' values, and
   writing 100k chunks then takes minutes instead of ~45 on 2 cores. ``--vectors minilm`` embeds
   for real the chunks written in that run (or point ``--home`` at a finished ``bench/scale.py``
   home, whose index is real).
2. **A fresh process** (so that building leaves nothing behind in it) opens the index as the app
   does (``Services``: embedder, reranker, Chroma, the BM25 snapshot), loads the generator, asks
   ``--questions`` NFCorpus test questions through the pipeline, then for each question reranks
   its 30 best BM25 hits and generates an answer from the top 4 (over random vectors the
   pipeline may abstain before the reranker and generator run, and they must run to count), and
   reads RSS.
3. It **ingests one small file and deletes it** again: each is a full BM25 rebuild in the
   background over every chunk. RSS after each, and the peak (VmHWM, reset first through
   ``/proc/self/clear_refs``; Linux).
4. **Baseline, same process:** the same rebuild from the registry, alternately with bm25s' own
   CSC builder (which ``rag.sparse.csc_by_column`` replaced) and with ours, twice each; the
   transient (peak over the RSS it started from) of each.

Prints one JSON object (figures in GiB) and writes it to ``DIR/memory.json`` and to ``--json``
(``make bench-memory``: results/bench-memory.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
TARGET_GIB = 2.0


def proc_status(key: str) -> float:
    """A /proc/self/status figure in GiB: ``VmRSS`` now, ``VmHWM`` the peak since the last reset."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return round(int(line.split()[1]) / 2**20, 3)  # kB
    raise RuntimeError(f"{key} not in /proc/self/status: this benchmark needs Linux")


def reset_peak() -> None:
    """Start VmHWM again from the current RSS (``echo 5 > /proc/self/clear_refs``)."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
        fh.write("5")


class RandomVectors:
    """Stands in for the MiniLM embedder while the index is written: the real model's name and
    token counter (so chunking and the index's recorded model are the app's), random unit vectors."""

    def __init__(self, real: Any) -> None:
        import numpy as np

        self.name = real.name
        self.count_tokens = real.count_tokens
        self._dim = len(real.embed_query("dimension"))
        self._rng = np.random.default_rng(0)

    def embed_documents(self, texts: list[str]) -> Any:
        import numpy as np

        v = self._rng.standard_normal((len(texts), self._dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def embed_query(self, text: str) -> Any:
        return self.embed_documents([text])[0]


def build(home: Path, chunks: int, vectors: str) -> int:
    """Write (or finish) the index under ``home/index``; -> chunks indexed."""
    from scale import write_corpus

    from rag.config import Settings
    from rag.embed import SentenceTransformerEmbedder
    from rag.services import Services

    settings = Settings(home=home / "index", _env_file=None)  # type: ignore[call-arg]
    groups = write_corpus(home / "corpus", chunks, 10_000)
    real = SentenceTransformerEmbedder(settings)
    services = Services(settings, embedder=RandomVectors(real) if vectors == "random" else real)
    for i, files in enumerate(groups):
        if services.registry.stats()["chunks"] >= chunks:
            break
        t = time.perf_counter()
        results = services.indexer.ingest_paths(files)
        print(f"slice {i}: {sum(r.embedded for r in results):,} chunks in {time.perf_counter() - t:.0f} s, "
              f"index {services.registry.stats()['chunks']:,}", file=sys.stderr, flush=True)  # fmt: skip
    services.sparse.wait_refreshed()
    return services.registry.stats()["chunks"]


def rebuild_peak(services: Any, change: Any) -> tuple[float, float]:
    """Run ``change()`` (an ingest or a delete), wait for its BM25 rebuild -> (RSS after, peak)."""
    reset_peak()
    change()
    services.sparse.wait_refreshed()
    services.sparse.index()  # the version the change wrote, built (a no-op when the refresh did it)
    return proc_status("VmRSS"), proc_status("VmHWM")


def measure(home: Path, questions: int, rounds: int = 2) -> dict[str, Any]:
    """Steps 2-4 of the module docstring, in this (fresh) process."""
    import bm25s
    from scale import nf_queries

    import rag.sparse
    from ingest.chunking import doc_id_for
    from rag.config import Settings
    from rag.prompting import build_messages, load_template
    from rag.services import Services

    out: dict[str, Any] = {}
    services = Services(Settings(home=home / "index", _env_file=None))  # type: ignore[call-arg]
    out["index_chunks"] = services.registry.stats()["chunks"]
    services.sparse.index()  # the BM25 snapshot, as the app's first question would load it
    out["rss_index_open"] = proc_status("VmRSS")
    pipeline = services.pipeline  # loads the generator (and warms it up, as the app does)
    out["rss_all_models_loaded"] = proc_status("VmRSS")
    qs = nf_queries(questions)
    t = time.perf_counter()
    for q in qs:
        pipeline.ask(q)
    template = load_template()
    for q in qs:
        chunks = services._active_store().get([cid for cid, _ in services.sparse.search(q, 30)])
        if services.reranker is not None:
            services.reranker.score(q, [c.text for c in chunks])
        "".join(services.generator.stream(build_messages(q, chunks[:4], template)))
    out["prompt_tokens_last"] = services.generator.last_stats.prompt_tokens
    out["questions_s"] = round(time.perf_counter() - t, 1)
    out["rss_after_questions"] = proc_status("VmRSS")
    out["peak_before_rebuilds"] = proc_status("VmHWM")

    extra = home / "memory-check.txt"
    # New text every run: were the file left indexed by an interrupted run, an unchanged file
    # would be skipped and start no rebuild.
    words = " ".join(f"term{i}" for i in range(300))
    extra.write_text(f"Grounded memory check {time.time_ns()}. {words}\n", encoding="utf-8")
    doc = doc_id_for(str(extra))
    out["rss_after_ingest_rebuild"], out["peak_ingest_rebuild"] = rebuild_peak(
        services, lambda: services.indexer.ingest_paths([extra])
    )
    out["rss_after_delete_rebuild"], out["peak_delete_rebuild"] = rebuild_peak(
        services, lambda: services.indexer.delete(doc)
    )
    # Baseline: the current version built again from the registry (no snapshot), alternately with
    # bm25s' own CSC builder and with ours.
    ours, snapshots = rag.sparse.csc_by_column, services.sparse.snapshot_dir
    services.sparse.snapshot_dir = None
    # A B A B, so that the heap each build leaves behind favours neither side.
    for name, builder in [("bm25s_csc", bm25s.BM25._np_csc), ("ours", ours)] * rounds:
        rag.sparse.csc_by_column = builder  # BM25Index looks it up at build time
        services.sparse._built = None  # as index() does before a rebuild
        before = proc_status("VmRSS")
        reset_peak()
        services.sparse.index()
        out.setdefault(f"rebuild_transient_{name}", []).append(round(proc_status("VmHWM") - before, 3))
    rag.sparse.csc_by_column, services.sparse.snapshot_dir = ours, snapshots
    extra.unlink(missing_ok=True)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--home", type=Path, default=Path("/tmp/grounded-bench-100k"), help="index and corpus (kept)")
    p.add_argument("--chunks", type=int, default=100_000)
    p.add_argument("--questions", type=int, default=5)
    p.add_argument("--vectors", choices=("random", "minilm"), default="random")
    p.add_argument("--json", type=Path, help="also write the JSON object to this file")
    p.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)  # the fresh process
    args = p.parse_args()
    if args.measure_only:
        print(json.dumps(measure(args.home, args.questions)))
        return 0
    t = time.perf_counter()
    n = build(args.home, args.chunks, args.vectors)
    print(f"index: {n:,} chunks ({time.perf_counter() - t:.0f} s)", file=sys.stderr, flush=True)
    run = subprocess.run(
        [sys.executable, __file__, "--measure-only", "--home", str(args.home), "--questions", str(args.questions)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if run.returncode != 0:
        print(run.stderr[-4000:], file=sys.stderr)
        return run.returncode
    out = json.loads(run.stdout.strip().splitlines()[-1])
    worst = max(out["rss_after_questions"], out["rss_after_ingest_rebuild"], out["rss_after_delete_rebuild"])
    out["summary"] = {
        "target_gib": TARGET_GIB,
        "rss_max_between_rebuilds": worst,
        "peak_during_rebuilds": max(out["peak_ingest_rebuild"], out["peak_delete_rebuild"]),
        # A rebuild's transient (its peak over the RSS it started from), ours vs bm25s' CSC builder.
        "rebuild_transient_ours_min": min(out["rebuild_transient_ours"]),
        "rebuild_transient_bm25s_csc_min": min(out["rebuild_transient_bm25s_csc"]),
        "vectors": args.vectors,
    }
    (args.home / "memory.json").write_text(json.dumps(out, indent=1) + "\n")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
