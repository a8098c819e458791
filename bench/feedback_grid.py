"""Choose the pseudo-relevance feedback settings (``RAG_FEEDBACK_*``) on NFCorpus *dev* and check
them on SQuAD, with exact search over the app's own index, so a grid of settings costs seconds.

    .venv/bin/python bench/feedback_grid.py --data nfcorpus --home .cache/nf-full
    .venv/bin/python bench/feedback_grid.py --data squad --home /tmp/squad-home

The index is built (or reused) through the app's ingest path; the vectors and texts are then read
back from Chroma, and dense search is a matrix product (the app's Chroma HNSW gives nearly the
same lists). Per setting it prints the hybrid order's nDCG@10 (NFCorpus) or recall@1 of the gold
paragraph (SQuAD), and MRR@10. Settings: F feedback chunks, m terms, lam the BM25 weight of the
heaviest term, beta the Rocchio weight, keep the first-pass lists' weight in the final fusion
(0 = the feedback lists alone).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.config import REPO_ROOT, Settings
from rag.eval.datasets import datasets_dir
from rag.eval.metrics import evaluate
from rag.eval.retrieval import beir_task, index_task, squad_task
from rag.feedback import expansion_terms
from rag.fusion import reciprocal_rank_fusion
from rag.sparse import BM25Index, tokenize

GRID = [  # (F, m, lam, beta, keep); the first row is the shipped default
    (3, 10, 0.5, 1.0, 0.5),
    (3, 10, 0.5, 1.0, 0.0),
    (3, 10, 0.5, 1.0, 0.75),
    (3, 10, 0.5, 1.0, 1.0),
    (3, 10, 0.3, 0.5, 0.0),
    (3, 10, 0.8, 1.5, 0.5),
    (1, 10, 0.5, 1.0, 0.0),
    (2, 10, 0.5, 1.0, 0.0),
    (5, 10, 0.5, 1.0, 0.5),
]


def top(scores: np.ndarray, k: int = 200) -> np.ndarray:
    """Indices of the ``k`` highest scores, best first (ties by index)."""
    k = min(k, len(scores))
    idx = np.argpartition(-scores, k - 1)[:k]
    return idx[np.argsort(-scores[idx], kind="stable")]


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", choices=["nfcorpus", "squad"], default="nfcorpus")
    p.add_argument("--home", type=Path, default=REPO_ROOT / ".cache" / "nf-full")
    p.add_argument("--depth", type=int, default=200)
    args = p.parse_args()
    if args.data == "nfcorpus":
        task, metrics = beir_task(datasets_dir() / "nfcorpus", "dev"), ["ndcg@10", "mrr@10"]
    else:
        squad = datasets_dir() / "squad-v1.1" / "dev-v1.1-first40.json"
        task, metrics = squad_task(squad, limit_queries=300), ["recall@1", "mrr@10"]
    services, doc_of, _, _ = index_task(task, Settings(home=args.home, reranker_model="none", feedback_chunks=0))
    got = services.retriever.dense.store().collection.get(include=["embeddings", "metadatas", "documents"])
    vecs = np.asarray(got["embeddings"], dtype=np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    docs = [doc_of.get(m["source"], "") for m in got["metadatas"]]
    toks = [tokenize(t) for t in got["documents"]]
    bm25 = BM25Index(got["ids"], toks)
    n = len(toks)
    idf = bm25.idf([t for ts in toks for t in ts])
    qids = sorted(task.queries)
    qrels = {q: task.qrels[q] for q in qids}
    emb = services.retriever.dense.embedder
    qvecs = np.vstack([np.asarray(emb.embed_query(task.queries[q]), dtype=np.float32).reshape(1, -1) for q in qids])
    qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)
    qtoks = [tokenize(task.queries[q]) for q in qids]
    cache: dict[str, np.ndarray] = {}

    def term(t: str) -> np.ndarray:
        if t not in cache:
            cache[t] = bm25.scores([t])
        return cache[t]

    def bm25_list(j: int, extra: Sequence[tuple[str, float]] = (), lam: float = 0.0) -> np.ndarray:
        s = sum((term(t) for t in dict.fromkeys(qtoks[j])), np.zeros(n, np.float32))
        if extra:  # weights scaled so the heaviest is 1, as the app uses them
            s = s + lam * sum((w * term(t) for t, w in extra), np.zeros(n, np.float32))
        order = top(s, args.depth)
        return order[s[order] > 0]

    def fuse(lists: Sequence[np.ndarray], weights: Sequence[float]) -> list[int]:
        return [i for i, _ in reciprocal_rank_fusion([list(x) for x in lists], weights=weights)][: args.depth]

    def score(runs: Mapping[str, Sequence[int] | np.ndarray]) -> str:
        doc_runs = {}
        for q, order in runs.items():
            ranked: dict[str, float] = {}
            for i in order:  # a document takes the rank of its best chunk
                if docs[i] and docs[i] not in ranked:
                    ranked[docs[i]] = 1.0 / (len(ranked) + 1)
            doc_runs[q] = ranked
        return " ".join(f"{k} {v:.4f}" for k, v in evaluate(qrels, doc_runs, metrics).items())

    dense = {q: top(vecs @ qvecs[j], args.depth) for j, q in enumerate(qids)}
    sparse = {q: bm25_list(j) for j, q in enumerate(qids)}
    hybrid = {q: fuse([dense[q], sparse[q]], [1.0, 1.0]) for q in qids}
    print(f"{args.data}: dense {score(dense)} | bm25 {score(sparse)} | hybrid {score(hybrid)}", flush=True)
    for f, m, lam, beta, keep in GRID:
        runs: dict[str, Sequence[int]] = {}
        for j, q in enumerate(qids):
            fb = hybrid[q][:f]
            moved = qvecs[j] + beta * vecs[fb].mean(axis=0)
            d2 = top(vecs @ (moved / np.linalg.norm(moved)), args.depth)
            b2 = bm25_list(j, expansion_terms(qtoks[j], [toks[i] for i in fb], idf, m), lam)
            runs[q] = fuse([d2, b2, dense[q], sparse[q]], [1.0, 1.0, keep, keep])
        print(f"  F{f} m{m} lam{lam} beta{beta} keep{keep}: hybrid {score(runs)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
