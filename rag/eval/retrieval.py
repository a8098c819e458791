"""`python -m rag.eval retrieval`: retrieval quality and per-stage latency of every mode.

    python -m rag.eval retrieval --beir ../shared/datasets/nfcorpus --split test
    python -m rag.eval retrieval --squad ../shared/datasets/squad-v1.1/dev-v1.1-first40.json

The corpus goes into a fresh temporary index through the app's own ingest path (each
document written as a .txt file and ingested by the Indexer: same loader, chunker, embedder,
Chroma and BM25). Chunks are ranked, then mapped to documents (a document takes the rank of
its best chunk). Modes:

- ``bm25``: BM25 alone; ``dense``: Chroma alone (no relevance floor);
- ``hybrid``: both fused with RRF (the app's settings: k, weights);
- ``hybrid+rerank``: the cross-encoder re-orders the top ``--rerank-top-n`` fused chunks.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.eval.datasets import read_beir, read_squad, safe_doc_name
from rag.eval.metrics import METRICS, doc_run, evaluate, percentiles
from rag.pipeline import retrieval_trace
from rag.retrieve import HybridRetriever
from rag.types import FileResult, RetrievalTrace

ALL_MODES = ("bm25", "dense", "hybrid", "hybrid+rerank")
SQUAD_METRICS = ("recall@1", "recall@5", "recall@20", "mrr@10")


@dataclass
class Task:
    """What to evaluate: documents to index, queries, and which documents are relevant."""

    docs: dict[str, str]  # doc id -> text
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    metrics: tuple[str, ...]


def beir_task(folder: Path, split: str, limit_queries: int = 0, limit_docs: int = 0, seed: int = 0) -> Task:
    """A BEIR folder as a task. ``limit_docs`` keeps every document relevant to the kept queries
    plus others up to that total (for quick runs); 0 keeps the whole corpus."""
    b = read_beir(folder, split)
    qids = sorted(b.queries)
    if limit_queries:
        qids = sorted(random.Random(seed).sample(qids, min(limit_queries, len(qids))))
    qrels = {q: b.qrels[q] for q in qids}
    doc_ids = list(b.corpus)
    if limit_docs:
        needed = {d for r in qrels.values() for d in r if d in b.corpus}
        others = [d for d in doc_ids if d not in needed]
        random.Random(seed).shuffle(others)
        keep = needed | set(others[: max(0, limit_docs - len(needed))])
        doc_ids = [d for d in doc_ids if d in keep]
    return Task({d: b.corpus[d].full_text for d in doc_ids}, {q: b.queries[q] for q in qids}, qrels, METRICS)


def squad_task(path: Path, limit_queries: int = 0, seed: int = 0, limit_docs: int = 0) -> Task:
    """Every SQuAD paragraph is a document; each question's only relevant document is its own.
    ``limit_docs`` keeps the kept questions' paragraphs plus others up to that total."""
    docs: dict[str, str] = {}
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for art in read_squad(path):
        for p in art.paragraphs:
            docs[p.pid] = p.context
            for q in p.questions:
                queries[q.qid] = q.question
                qrels[q.qid] = {p.pid: 1}
    if limit_queries:
        keep = set(random.Random(seed).sample(sorted(queries), min(limit_queries, len(queries))))
        queries = {q: t for q, t in queries.items() if q in keep}
        qrels = {q: r for q, r in qrels.items() if q in keep}
    if limit_docs:
        needed = {d for r in qrels.values() for d in r}
        others = sorted(set(docs) - needed)
        random.Random(seed).shuffle(others)
        keep_docs = needed | set(others[: max(0, limit_docs - len(needed))])
        docs = {d: t for d, t in docs.items() if d in keep_docs}
    return Task(docs, queries, qrels, SQUAD_METRICS)


def write_corpus(docs: dict[str, str], folder: Path) -> dict[str, str]:
    """One .txt file per document -> {file path as the indexer records it: doc id}."""
    folder.mkdir(parents=True, exist_ok=True)
    names: dict[str, str] = {}
    for doc_id, text in docs.items():
        name = safe_doc_name(doc_id)
        while name in names.values():  # two ids that sanitise alike
            name += "_"
        path = folder / f"{name}.txt"
        path.write_text((text.strip() or doc_id) + "\n", encoding="utf-8")
        names[doc_id] = name
    return {str(folder / f"{n}.txt"): d for d, n in names.items()}


def run_modes(
    services: Any,
    task: Task,
    modes: Sequence[str],
    depth: int,
    rerank_top_n: int,
    doc_of: dict[str, str],
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Rank every query in every mode -> {mode: {"metrics": ..., "latency_ms": {stage: ...}}}.
    One :func:`rag.pipeline.retrieval_trace` per query (the app's own flow, with no relevance
    floor and ``depth`` candidates per list) gives every mode's list."""
    need_rerank = "hybrid+rerank" in modes
    if need_rerank and services.reranker is None:
        raise SystemExit("hybrid+rerank needs a reranker: set RAG_RERANKER_MODEL (it is 'none').")
    runs: dict[str, dict[str, dict[str, float]]] = {m: {} for m in modes}
    lat: dict[str, list[float]] = {}
    reranker = services.reranker if need_rerank else None
    for i, (qid, q) in enumerate(task.queries.items()):
        tr = retrieval_trace(services.settings, _AllLists(services.retriever), reranker, q,
                             depth=depth, rerank_top_n=rerank_top_n, floor=False)  # fmt: skip
        ranked = {"dense": tr.dense, "bm25": tr.bm25, "hybrid": tr.hybrid, "hybrid+rerank": tr.reranked}
        for m in modes:
            runs[m][qid] = doc_run(ranked[m], doc_of, depth=100)
        for stage, ms in tr.timings.items():
            lat.setdefault(stage, []).append(ms)
        if progress:
            progress(i + 1, len(task.queries))
    stages = {"dense": ["dense"], "bm25": ["bm25"], "hybrid": ["dense", "bm25", "fusion", "feedback"]}
    stages["hybrid+rerank"] = [*stages["hybrid"], "rerank"]
    out: dict[str, dict[str, Any]] = {}
    for m in modes:
        per_stage = {s: percentiles(lat.get(s, [])) for s in stages[m]}
        totals = [sum(lat[s][i] for s in stages[m] if s in lat) for i in range(len(task.queries))]
        per_stage["total"] = percentiles(totals)
        out[m] = {"metrics": evaluate(task.qrels, runs[m], task.metrics), "latency_ms": per_stage}
    return out


def index_task(task: Task, settings: Settings) -> tuple[Any, dict[str, str], list[FileResult], float]:
    """Write ``task.docs`` as files under ``settings.home`` and ingest them through the app's
    Indexer -> (services, {file path: doc id}, per-file results, ingest seconds). On an existing
    home, unchanged documents are not embedded again."""
    from rag.services import Services

    folder = settings.home_dir / "corpus"
    doc_of = write_corpus(task.docs, folder)
    services = Services(settings)
    t0 = time.perf_counter()
    results = services.indexer.ingest_paths([folder])
    return services, doc_of, results, time.perf_counter() - t0


class _AllLists:
    """The app's retriever in hybrid mode whatever RAG_RETRIEVAL_MODE says, so that every
    mode's list is in the trace."""

    def __init__(self, retriever: HybridRetriever) -> None:
        self.retriever = retriever

    def trace(self, question: str, k: int, doc_ids: Sequence[str] | None = None, floor: bool = True) -> RetrievalTrace:
        return self.retriever.trace(question, k, doc_ids, floor, mode="hybrid")


def evaluate_task(task: Task, settings: Settings, modes: Sequence[str], depth: int, rerank_top_n: int,
                  quiet: bool = False) -> dict[str, Any]:  # fmt: skip
    """Index ``task.docs`` into a fresh index under ``settings.home`` and evaluate every mode."""
    services, doc_of, results, ingest_s = index_task(task, settings)
    failed = [r for r in results if r.status == "failed"]
    chunks = services.registry.stats()["chunks"]
    if not quiet:
        print(f"indexed {len(results) - len(failed)} documents, {chunks} chunks in {ingest_s:.0f} s", flush=True)
    for r in failed[:5]:  # stderr: with --json, stdout holds the JSON alone
        print(f"  not indexed: {r.reason}", file=sys.stderr)

    def progress(i: int, n: int) -> None:
        if not quiet and (i % 50 == 0 or i == n):
            print(f"  {i}/{n} queries", flush=True)

    out = run_modes(services, task, modes, depth, rerank_top_n, doc_of, progress)
    return {
        "modes": out,
        "corpus": {"documents": len(task.docs), "chunks": chunks, "ingest_seconds": round(ingest_s, 1)},
        "queries": len(task.queries),
        "settings": {
            "embedding_model": settings.embedding_model,
            "reranker_model": settings.reranker_model,
            "rerank_top_n": rerank_top_n,
            "rerank_keep_first_stage": settings.tuning.rerank_keep_first_stage,
            "rrf_k": settings.tuning.rrf_k,
            "rrf_weights": [settings.tuning.rrf_dense_weight, settings.tuning.rrf_bm25_weight],
            "feedback": {
                "chunks": settings.tuning.feedback_chunks,
                "terms": settings.tuning.feedback_terms,
                "bm25_weight": settings.tuning.feedback_bm25_weight,
                "dense_weight": settings.tuning.feedback_dense_weight,
            },
            "depth_chunks": depth,
            "bf16": settings.bf16,
        },
    }


def format_table(result: dict[str, Any]) -> str:
    modes = result["modes"]
    metrics = list(next(iter(modes.values()))["metrics"])
    head = f"{'mode':<15}" + "".join(f"{m:>11}" for m in metrics) + f"{'p50 ms':>9}{'p95 ms':>9}"
    lines = [head, "-" * len(head)]
    for mode, r in modes.items():
        lat = r["latency_ms"]["total"]
        lines.append(
            f"{mode:<15}"
            + "".join(f"{r['metrics'][m]:>11.4f}" for m in metrics)
            + f"{lat['p50']:>9.1f}{lat['p95']:>9.1f}"
        )
    lines.append("")
    lines.append("per-stage latency, ms (p50 / p95): " + ", ".join(
        f"{s} {v['p50']:.1f} / {v['p95']:.1f}"
        for s, v in modes[list(modes)[-1]]["latency_ms"].items() if s != "total"
    ))  # fmt: skip
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in ALL_MODES]
    if unknown:
        raise SystemExit(f"unknown mode(s) {unknown}; choose from {','.join(ALL_MODES)}")
    if bool(args.beir) == bool(args.squad):
        raise SystemExit("give exactly one of --beir DIR or --squad FILE")
    if args.beir:
        task = beir_task(args.beir, args.split, args.limit_queries, args.limit_docs, args.seed)
    else:
        task = squad_task(args.squad, args.limit_queries, args.seed, args.limit_docs)
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="grounded-eval-"))
    overrides: dict[str, Any] = {"home": home}
    if args.reranker:
        overrides["reranker_model"] = args.reranker
    elif "hybrid+rerank" not in modes:
        overrides["reranker_model"] = "none"
    settings = Settings(**overrides)
    if "hybrid+rerank" in modes and settings.reranker_model == "none":
        # the mode asks for a reranker but RAG_RERANKER_MODEL=none: evaluate the shipped one
        settings = settings.model_copy(update={"reranker_model": "packaged"})
    try:
        result = evaluate_task(task, settings, modes, args.depth, args.rerank_top_n or settings.tuning.rerank_top_n,
                               quiet=args.json)  # fmt: skip
        result["dataset"] = str(args.beir or args.squad) + (f" ({args.split})" if args.beir else "")
    finally:
        if not args.home:
            shutil.rmtree(home, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"\n{result['dataset']}: {result['queries']} queries, {result['corpus']['documents']} documents, "
              f"{result['corpus']['chunks']} chunks")  # fmt: skip
        print(format_table(result))
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("retrieval", help="nDCG/recall/MRR and latency of bm25, dense, hybrid, hybrid+rerank")
    p.add_argument("--beir", type=Path, help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    p.add_argument("--split", default="test", help="qrels split to evaluate (BEIR)")
    p.add_argument("--squad", type=Path, help="SQuAD v1.1 JSON: every paragraph becomes a document")
    p.add_argument("--modes", default=",".join(ALL_MODES), help="comma-separated: " + ",".join(ALL_MODES))
    p.add_argument("--json", action="store_true", help="print one JSON object keyed by mode")
    p.add_argument("--depth", type=int, default=200, help="chunks retrieved per list (>= 100 documents)")
    p.add_argument("--rerank-top-n", type=int, default=0, help="chunks the reranker re-scores (default: setting)")
    p.add_argument(
        "--reranker",
        default="",
        help="cross-encoder for hybrid+rerank (default: RAG_RERANKER_MODEL, "
        "or the shipped models/reranker when that is 'none')",
    )
    p.add_argument("--limit-queries", type=int, default=0, help="evaluate a random sample of queries (0 = all)")
    p.add_argument("--limit-docs", type=int, default=0, help="index the relevant docs + others up to this many")
    p.add_argument("--home", default="", help="keep the index here instead of a temporary folder")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)
