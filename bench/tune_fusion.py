"""Choose the fusion settings (RRF k, BM25 weight) and the rerank depth on NFCorpus *dev*,
never on test: the dense and BM25 lists are computed once per query, then every setting is
scored on them. With ``--rerank`` the fused lists go through the app's feedback pass
(``RAG_FEEDBACK_CHUNKS``) before the cross-encoder re-scores them.

    .venv/bin/python bench/tune_fusion.py --home /tmp/nf-index [--split dev] [--rerank [--reranker DIR]
        [--rerank-top-n 10,20,30]]

``--home`` keeps the index (built on the first run through the app's ingest path) so the
test-split evaluation can reuse it: ``python -m rag.eval retrieval --beir ... --home DIR``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rerank_candidates import sweep_rerank
from rag.config import REPO_ROOT, Settings
from rag.eval.datasets import datasets_dir
from rag.eval.metrics import doc_run, evaluate
from rag.eval.retrieval import beir_task, index_task, unfloored_dense


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--beir", type=Path, default=datasets_dir() / "nfcorpus")
    p.add_argument("--split", default="dev")
    p.add_argument("--home", type=Path, default=REPO_ROOT / ".cache" / "nf-index")
    p.add_argument("--depth", type=int, default=200)
    p.add_argument("--rerank", action="store_true", help="also sweep RAG_RERANK_KEEP_FIRST_STAGE")
    p.add_argument("--rerank-top-n", default="30", help="with --rerank: comma-separated depths to sweep, e.g. 10,20,30")
    p.add_argument("--reranker", default="packaged", help="with --rerank: the cross-encoder (folder or HF id)")
    args = p.parse_args()
    task = beir_task(args.beir, args.split)
    settings = Settings(home=args.home, reranker_model=args.reranker if args.rerank else "none")
    services, doc_of, _results, _seconds = index_task(task, settings)
    hybrid = services.retriever
    dense = unfloored_dense(services)
    lists, vectors = {}, {}
    for q, t in task.queries.items():
        d_hits, vectors[q] = dense.retrieve_with_vector(t, args.depth)
        lists[q] = (d_hits, hybrid.bm25(t, args.depth))
    print(f"{args.split}: {len(task.queries)} queries")
    for name, idx in (("dense", 0), ("bm25", 1)):
        run = {q: doc_run(v[idx], doc_of) for q, v in lists.items()}
        print(f"  {name:<28} ndcg@10 {evaluate(task.qrels, run, ['ndcg@10'])['ndcg@10']:.4f}")
    best = (0.0, 60.0, 1.0)
    for k, w in itertools.product([10.0, 30.0, 60.0, 100.0], [0.5, 0.75, 1.0, 1.5, 2.0]):
        hybrid.rrf_k, hybrid.weights = k, (1.0, w)
        run = {q: doc_run(hybrid.fuse(d, s, args.depth), doc_of) for q, (d, s) in lists.items()}
        score = evaluate(task.qrels, run, ["ndcg@10"])["ndcg@10"]
        print(f"  hybrid k={k:<5.0f} bm25 weight={w:<4}   ndcg@10 {score:.4f}")
        best = max(best, (score, k, w))
    print(f"best: k={best[1]:.0f}, bm25 weight={best[2]} (ndcg@10 {best[0]:.4f})")
    if args.rerank:
        assert services.reranker is not None
        # the app's fusion settings (RAG_RRF_*), not the sweep's best: the sweep only advises them
        hybrid.rrf_k, hybrid.weights = settings.rrf_k, (settings.rrf_dense_weight, settings.rrf_bm25_weight)
        # the app's candidates: fusion, then the feedback pass (RAG_FEEDBACK_CHUNKS; 0 = off)
        fused = {q: hybrid.refine(task.queries[q], vectors[q], d, s, args.depth) for q, (d, s) in lists.items()}
        refined = evaluate(task.qrels, {q: doc_run(f, doc_of) for q, f in fused.items()}, ["ndcg@10"])["ndcg@10"]
        print(f"  hybrid + feedback ({settings.feedback_chunks} chunks)  ndcg@10 {refined:.4f}")
        depths = sorted({int(x) for x in args.rerank_top_n.split(",")})
        n = depths[-1]  # pair scores do not depend on the other pairs: score the deepest list once
        scores = {q: services.reranker.score(task.queries[q], [h.chunk.text for h in f[:n]]) for q, f in fused.items()}

        queries = [(task.queries[q], q, f) for q, f in fused.items()]
        swept = sweep_rerank(queries, scores, depths, (0.0, 0.25, 0.5, 1.0, 2.0), task.qrels, doc_of)
        for (depth, keep), score in swept.items():
            print(f"  hybrid+rerank top-{depth} keep_first_stage={keep:<5} ndcg@10 {score:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
