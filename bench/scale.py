"""Scale: ingest ~100k chunks slice by slice, with chunks/s per slice and query latency at
each step, resumable after an interruption.

    .venv/bin/python bench/scale.py --home DIR [--chunks 100000] [--slice 10000] [--queries 50]
                                    [--reference-home DIR2] [--json FILE]

The corpus is real plus synthetic text, written once under ``DIR/corpus`` (deterministic):

- real: every NFCorpus document (~11.9k chunks) and every SQuAD paragraph in
  ``../shared/datasets``, one .txt file each, ingested first (the "10k" point);
- synthetic: documents of ~40 sentences drawn at random (seeded) from the real sentence pool,
  in paragraphs of 5, until the corpus holds about ``--chunks`` chunks. Realistic vocabulary and
  lengths; every document is new text, so nothing is deduplicated away.

Each slice of ~``--slice`` chunks is one ``Indexer.ingest_paths`` call, exactly as
`python -m ingest` runs it. After each slice the benchmark asks ``--queries`` NFCorpus test
queries through the app's retriever (the shipped default: hybrid, no reranker) and records
p50/p95 per stage; the first query after a slice also pays the BM25 rebuild, reported apart.

With ``--reference-home``, once the target is reached the same queries run alternately on the
large index and on a reference index of the first slice alone (built there when empty), in
one process: the query p50 ratio is read from that, not from figures taken hours apart.

Progress is appended to ``DIR/scale.json`` after every slice. Run it again after an
interruption (Ctrl-C, kill -9, power loss) and it goes on: finished slices are skipped, and in
the interrupted slice the files already indexed come back "unchanged" (nothing re-embedded).
``--json`` writes the whole run (every slice, the same-process comparison, the summary) to one
file (``make bench-scale``: results/bench-scale.json).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.eval.datasets import datasets_dir
from rag.eval.metrics import percentiles
from rag.pipeline import retrieval_trace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATASETS = datasets_dir()
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
# Characters of text per indexed chunk with the default 200-token chunks and their overlap,
# measured on the first run: 500 for the real files (7.17 MB -> 14,375 chunks), 650 for the
# synthetic ones (8.32 MB -> 12,832 chunks).
CHARS_PER_CHUNK_REAL = 500
CHARS_PER_CHUNK_SYNTHETIC = 650


def write_corpus(out: Path, target_chunks: int, slice_chunks: int, seed: int = 7) -> list[list[Path]]:
    """Write the corpus once (kept between runs) -> files grouped in slices, real ones first."""
    manifest = out / "manifest.json"
    if manifest.is_file():
        return [[out / name for name in group] for group in json.loads(manifest.read_text())]
    out.mkdir(parents=True, exist_ok=True)
    real: list[tuple[str, str]] = []
    with open(DATASETS / "nfcorpus" / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            real.append((f"nf_{re.sub(r'[^A-Za-z0-9_-]', '_', d['_id'])}", f"{d.get('title', '')}\n\n{d['text']}"))
    for f in sorted((DATASETS / "squad-v1.1").glob("*.json")):
        for a, article in enumerate(json.loads(f.read_text(encoding="utf-8"))["data"]):
            for p, para in enumerate(article["paragraphs"]):
                real.append((f"squad_{a:03d}_{p:03d}", f"{article['title'].replace('_', ' ')}\n\n{para['context']}"))
    pool = [s.strip() for _, text in real for s in SENTENCE.split(text) if 40 <= len(s.strip()) <= 400]
    rng = random.Random(seed)
    files: list[tuple[Path, int]] = []  # (path, characters)
    for name, text in real:
        path = out / f"{name}.txt"
        path.write_text(text.strip() + "\n", encoding="utf-8")
        files.append((path, len(text)))
    total = sum(n for _, n in files) / CHARS_PER_CHUNK_REAL
    i = 0
    while total < target_chunks:
        sentences = rng.sample(pool, 40)
        text = "\n\n".join(" ".join(sentences[j : j + 5]) for j in range(0, 40, 5))
        path = out / f"syn_{i:06d}.txt"
        path.write_text(text + "\n", encoding="utf-8")
        files.append((path, len(text)))
        total += len(text) / CHARS_PER_CHUNK_SYNTHETIC
        i += 1
    # Slices: the real files first, then synthetic ones in groups of about --slice chunks.
    n_real = len(real)
    groups: list[list[Path]] = [[p for p, _ in files[:n_real]]]
    current: list[Path] = []
    size = 0.0
    for path, n in files[n_real:]:
        current.append(path)
        size += n / CHARS_PER_CHUNK_SYNTHETIC
        if size >= slice_chunks:
            groups.append(current)
            current, size = [], 0.0
    if current:
        groups.append(current)
    manifest.write_text(json.dumps([[p.name for p in g] for g in groups]))
    return groups


def nf_queries(n: int) -> list[str]:
    test = {line.split("\t")[0] for line in (DATASETS / "nfcorpus/qrels/test.tsv").read_text().splitlines()[1:]}
    out = []
    with open(DATASETS / "nfcorpus/queries.jsonl", encoding="utf-8") as fh:
        for line in fh:
            q = json.loads(line)
            if q["_id"] in test:
                out.append(q["text"])
    return out[:n]


def _timed_retrieve(services: Any, query: str, stages: dict[str, list[float]]) -> None:
    """Ask one query through the app's retriever; append each stage's ms (and the total) to ``stages``."""
    t0 = time.perf_counter()
    timings = retrieval_trace(services.settings, services.retriever, None, query).timings
    timings["total"] = (time.perf_counter() - t0) * 1000
    for name, ms in timings.items():
        stages.setdefault(name, []).append(ms)


def _by_stage(stages: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {name: percentiles(ms) for name, ms in stages.items()}


def time_queries(services: Any, queries: list[str]) -> dict[str, Any]:
    """Latency per stage of ``queries[1:]``; ``queries[0]`` pays the BM25 rebuild, reported apart."""
    services.pipeline  # noqa: B018 -- the app's process holds the generator too (RSS is logged per slice)
    t0 = time.perf_counter()
    retrieval_trace(services.settings, services.retriever, None, queries[0])  # rebuilds BM25 for the new version
    first = (time.perf_counter() - t0) * 1000
    stages: dict[str, list[float]] = {}
    for q in queries[1:]:
        _timed_retrieve(services, q, stages)
    return {"first_query_ms": round(first, 1), "stages": _by_stage(stages)}


def interleaved(a: Any, b: Any, queries: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per-stage latency of the same queries on two indexes, alternating between them."""
    times: list[dict[str, list[float]]] = [{}, {}]
    for services in (a, b):
        retrieval_trace(services.settings, services.retriever, None, queries[0])  # BM25 build, warm-up
    for q in queries[1:]:
        for side, services in enumerate((a, b)):
            _timed_retrieve(services, q, times[side])
    return _by_stage(times[0]), _by_stage(times[1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--home", type=Path, required=True, help="index and corpus folder (kept, for resuming)")
    p.add_argument("--chunks", type=int, default=100_000)
    p.add_argument("--slice", type=int, default=10_000)
    p.add_argument("--queries", type=int, default=50)
    p.add_argument("--reference-home", type=Path, default=None,
                   help="a small index to compare query latency with, in the same process (built from "
                        "the real files of slice 0 when empty)")  # fmt: skip
    p.add_argument("--json", type=Path, help="also write every slice, the comparison and the summary here")
    args = p.parse_args()
    import psutil

    from rag.config import Settings
    from rag.services import Services

    t = time.perf_counter()
    groups = write_corpus(args.home / "corpus", args.chunks, args.slice)
    print(f"corpus: {sum(map(len, groups)):,} files in {len(groups)} slices ({time.perf_counter() - t:.0f} s)",
          file=sys.stderr)  # fmt: skip
    log_path = args.home / "scale.json"
    log: list[dict[str, Any]] = json.loads(log_path.read_text()) if log_path.is_file() else []
    done = {row["slice"] for row in log}
    services = Services(Settings(home=args.home / "index", _env_file=None))  # type: ignore[call-arg]
    queries = nf_queries(args.queries + 1)
    for i, files in enumerate(groups):
        if i in done:
            continue
        if log and log[-1]["index_chunks"] >= args.chunks:
            break  # the target is reached (a corpus written for a larger --chunks has more slices)
        t0 = time.perf_counter()
        results = services.indexer.ingest_paths(files)
        seconds = time.perf_counter() - t0
        services.sparse.wait_refreshed()  # the background BM25 rebuild, timed apart from ingest
        bm25_seconds = time.perf_counter() - t0 - seconds
        embedded = sum(r.embedded for r in results)
        unchanged = sum(1 for r in results if r.status == "unchanged")
        failed = [r for r in results if r.status == "failed"]
        stats = services.registry.stats()
        row = {
            "slice": i,
            "files": len(files),
            "unchanged_files": unchanged,  # > 0 only in a slice resumed after an interruption
            "failed_files": len(failed),
            "chunks_embedded": embedded,
            "seconds": round(seconds, 1),
            "chunks_per_s": round(embedded / seconds, 1) if seconds else 0.0,
            "bm25_refresh_seconds": round(bm25_seconds, 1),
            "index_chunks": stats["chunks"],
            "query": time_queries(services, queries),
            "rss_gib": round(psutil.Process().memory_info().rss / 2**30, 2),
        }
        log.append(row)
        log_path.write_text(json.dumps(log, indent=1) + "\n")
        q = row["query"]["stages"]["total"]
        print(f"slice {i}: {embedded:,} chunks in {seconds:.0f} s = {row['chunks_per_s']} chunks/s; index "
              f"{stats['chunks']:,} chunks; query p50 {q['p50']} ms p95 {q['p95']} ms; "
              f"unchanged {unchanged}, failed {len(failed)}", flush=True)  # fmt: skip
    compare: dict[str, Any] | None = None
    if args.reference_home:
        # Query latency at both sizes in one process, interleaved query by query, so machine noise
        # and process state (caches, background threads) hit both alike.
        ref = Services(Settings(home=args.reference_home, _env_file=None))  # type: ignore[call-arg]
        if ref.registry.stats()["chunks"] == 0:
            t0 = time.perf_counter()
            ref.indexer.ingest_paths(groups[0])
            ref.sparse.wait_refreshed()
            print(f"reference index: slice 0 in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        big, small = interleaved(services, ref, queries)
        compare = {
            "index_chunks": [services.registry.stats()["chunks"], ref.registry.stats()["chunks"]],
            "large": big,
            "reference": small,
            "p50_ratio": round(big["total"]["p50"] / small["total"]["p50"], 2),
        }
        (args.home / "scale-compare.json").write_text(json.dumps(compare, indent=1) + "\n")
        print(json.dumps({"same_process_comparison": compare}))
    first, last = log[0], log[-1]
    rates = [r["chunks_per_s"] for r in log if r["chunks_embedded"] > 1000]
    summary = {
        "index_chunks": last["index_chunks"],
        "chunks_per_s_first_slice": first["chunks_per_s"],
        "chunks_per_s_last_slice": last["chunks_per_s"],
        "chunks_per_s_min_max": [min(rates), max(rates)] if rates else None,
        "query_p50_ms_first": first["query"]["stages"]["total"]["p50"],
        "query_p50_ms_last": last["query"]["stages"]["total"]["p50"],
        "query_p50_ratio": round(last["query"]["stages"]["total"]["p50"] / first["query"]["stages"]["total"]["p50"], 2),
    }
    print(json.dumps(summary))
    if args.json:
        run = {"slices": log, "same_process_comparison": compare, "summary": summary}
        args.json.write_text(json.dumps(run, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
