"""Choose between reranker checkpoints on NFCorpus *dev* without the index: the app's hybrid
candidates are exported once, then any number of cross-encoders are scored on them (on a GPU
machine too, where our retrievers, Chroma and the corpus are not installed).

    # here, through the app's ingest and hybrid retriever (app fusion settings):
    .venv/bin/python bench/rerank_candidates.py export --home .cache/nf-index --out dev-candidates.json.gz
    # anywhere sentence-transformers runs:
    python bench/rerank_candidates.py score dev-candidates.json.gz models/reranker OTHER_DIR ... [--json F]

``score`` ranks each query's candidates exactly as ``python -m rag.eval retrieval`` does in
mode hybrid+rerank (:func:`rag.rerank.rerank` on the top ``--top-n``, the rest in hybrid order,
a document ranked by its best chunk) and prints nDCG@10 per checkpoint and
``RAG_RERANK_KEEP_FIRST_STAGE``. Never run ``export`` on the test split to pick a checkpoint.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.config import REPO_ROOT, Settings
from rag.eval.datasets import datasets_dir
from rag.eval.metrics import doc_run, evaluate
from rag.rerank import rerank
from rag.types import Chunk, ScoredChunk


def export(args: argparse.Namespace) -> int:
    from rag.eval.retrieval import beir_task, index_task, unfloored_dense

    task = beir_task(args.beir, args.split)
    settings = Settings(home=args.home, reranker_model="none")
    services, doc_of, _results, _seconds = index_task(task, settings)
    hybrid, dense = services.retriever, unfloored_dense(services)
    queries = []
    for qid, q in task.queries.items():
        d_hits, vector = dense.retrieve_with_vector(q, args.depth)
        fused = hybrid.refine(q, vector, d_hits, hybrid.bm25(q, args.depth), args.depth)
        # text only where the reranker reads it; deeper hits only place their documents
        queries.append({"id": qid, "text": q, "hits": [
            {"doc": doc_of.get(h.chunk.source, ""), "text": h.chunk.text if i < args.text_depth else ""}
            for i, h in enumerate(fused)]})  # fmt: skip
    with gzip.open(args.out, "wt", encoding="utf-8") as f:
        json.dump({"split": args.split, "qrels": task.qrels, "queries": queries,
                   "fusion": {"rrf_k": settings.rrf_k, "dense": settings.rrf_dense_weight,
                              "bm25": settings.rrf_bm25_weight, "depth": args.depth,
                              "feedback_chunks": settings.feedback_chunks}}, f)  # fmt: skip
    print(f"{len(queries)} {args.split} queries -> {args.out}")
    return 0


def _hits(q: dict[str, object]) -> list[ScoredChunk]:
    hits: Sequence[dict[str, str]] = q["hits"]  # type: ignore[assignment]
    # the document id doubles as the chunk's source, so doc_run maps it to itself
    return [ScoredChunk(Chunk(f"{q['id']}-{i}", h["doc"], h["doc"], None, 0, 0, h["text"]), 0.0)
            for i, h in enumerate(hits)]  # fmt: skip


class Cached:
    """A reranker that replays scores computed once per query (every setting reuses them)."""

    name = "cached"

    def __init__(self, scores: dict[str, list[float]]) -> None:
        self.scores, self.qid = scores, ""

    def score(self, question: str, passages: Sequence[str]) -> list[float]:
        return self.scores[self.qid][: len(passages)]


def sweep_rerank(
    queries: Sequence[tuple[str, str, Sequence[ScoredChunk]]],
    scores: dict[str, list[float]],
    tops: Sequence[int],
    keeps: Sequence[float],
    qrels: dict[str, dict[str, int]],
    doc_of: dict[str, str],
) -> dict[tuple[int, float], float]:
    """nDCG@10 of hybrid+rerank for every (rerank depth, keep_first_stage), from cross-encoder
    ``scores`` of each query's deepest candidates. ``queries``: (text, id, first-stage hits).
    Pair scores do not depend on the other pairs, so the deepest scores serve every depth."""
    cached, table = Cached(scores), {}
    for top in tops:
        for keep in keeps:
            run = {}
            for text, qid, hits in queries:
                cached.qid = qid
                run[qid] = doc_run(rerank(text, hits, cached, top, keep), doc_of)
            table[(top, keep)] = evaluate(qrels, run, ["ndcg@10"])["ndcg@10"]
    return table


def score(args: argparse.Namespace) -> int:
    from rag.rerank import CrossEncoderReranker

    with gzip.open(args.candidates, "rt", encoding="utf-8") as f:
        data = json.load(f)
    qrels = data["qrels"]
    queries = [(q["text"], q["id"], _hits(q)) for q in data["queries"]][: args.limit or None]
    qrels = {qid: qrels[qid] for _, qid, _ in queries}
    doc_of = {h.chunk.source: h.chunk.source for _, _, hs in queries for h in hs}
    tops = sorted({int(x) for x in args.top_n.split(",")})
    keeps = [float(x) for x in args.keep.split(",")]
    base = evaluate(qrels, {qid: doc_run(hs, doc_of) for _, qid, hs in queries}, ["ndcg@10"])["ndcg@10"]
    print(f"{data['split']}: {len(queries)} queries; hybrid ndcg@10 {base:.4f}")
    results: dict[str, object] = {"split": data["split"], "hybrid": base, "models": {}}
    for model in args.models:
        reranker = CrossEncoderReranker(Settings(reranker_model=model, device=args.device))
        t0 = time.perf_counter()
        scores = {qid: reranker.score(text, [h.chunk.text for h in hs[: tops[-1]]]) for text, qid, hs in queries}
        seconds = time.perf_counter() - t0

        swept = sweep_rerank(queries, scores, tops, keeps, qrels, doc_of)
        table = {f"top{top}-keep{keep:g}": v for (top, keep), v in swept.items()}
        best = max(table, key=table.__getitem__)
        print(f"{model}: scored in {seconds:.1f} s; best {best} {table[best]:.4f}; "
              + " ".join(f"{k} {v:.4f}" for k, v in table.items()))  # fmt: skip
        results["models"][model] = {"seconds": round(seconds, 1), "ndcg@10": table}  # type: ignore[index]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export", help="the app's hybrid candidates for every query of a BEIR split")
    e.add_argument("--beir", type=Path, default=datasets_dir() / "nfcorpus")
    e.add_argument("--split", default="dev")
    e.add_argument("--home", type=Path, default=REPO_ROOT / ".cache" / "nf-index")
    e.add_argument("--depth", type=int, default=100, help="hybrid hits kept per query")
    e.add_argument("--text-depth", type=int, default=30, help="hits that keep their text (the most reranked)")
    e.add_argument("--out", type=Path, required=True)
    s = sub.add_parser("score", help="nDCG@10 of hybrid+rerank for each cross-encoder")
    s.add_argument("candidates", type=Path)
    s.add_argument("models", nargs="+", help="cross-encoder folders or Hugging Face ids")
    s.add_argument("--top-n", default="30", help="comma-separated rerank depths")
    s.add_argument("--keep", default="0,0.5,1,2", help="comma-separated RAG_RERANK_KEEP_FIRST_STAGE values")
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    s.add_argument("--json", type=Path)
    s.add_argument("--limit", type=int, default=0, help="only the first N queries (a quick check)")
    args = p.parse_args(argv)
    return export(args) if args.cmd == "export" else score(args)


if __name__ == "__main__":
    raise SystemExit(main())
