"""Would giving every chunk its document's title help retrieval? (barely; docs/retrieval.md)

    .venv/bin/python bench/title_context.py [--home .cache/nf-full] [--split dev] [--rerank]

Reads an NFCorpus index with all 3,633 documents, built by
``python -m rag.eval retrieval --beir ../shared/datasets/nfcorpus --split dev --home .cache/nf-full``.
Every chunk that does not start with its document's title is embedded again as "title, blank
line, chunk" (the vectors are cached beside the index), BM25 is built both ways, and nDCG@10,
recall and MRR are printed for dense, BM25 and hybrid with plain (``d0``, ``b0``) or titled
(``d1``, ``b1``) chunks. ``--rerank`` adds hybrid + the shipped reranker, fed plain or titled
passages. Dense search here is exact (numpy), not Chroma's approximate HNSW, so the plain rows
differ slightly from ``python -m rag.eval retrieval``'s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def titled(text: str, title: str) -> str:
    """The chunk as embedded with its title; unchanged when it already starts with it.

    >>> titled("Body text.", "A title")
    'A title\\n\\nBody text.'
    >>> titled("A title\\n\\nBody text.", "A title")
    'A title\\n\\nBody text.'
    """
    return text if not title or text.startswith(title[:40]) else f"{title}\n\n{text}"


def rrf_rows(lists: Sequence[Sequence[int]], weights: Sequence[float], k: float, depth: int) -> list[int]:
    from rag.fusion import reciprocal_rank_fusion

    return [i for i, _ in reciprocal_rank_fusion(list(lists), list(weights), k=k)][:depth]


def rounded(metrics: dict[str, float]) -> dict[str, float]:
    return {m: round(x, 4) for m, x in metrics.items()}


def main() -> int:
    import bm25s

    from rag.config import Settings
    from rag.eval.datasets import datasets_dir, read_beir
    from rag.eval.metrics import METRICS, doc_run, evaluate
    from rag.rerank import rerank
    from rag.services import Services
    from rag.sparse import tokenize
    from rag.types import Chunk, ScoredChunk

    p = argparse.ArgumentParser()
    p.add_argument("--home", type=Path, default=ROOT / ".cache" / "nf-full")
    p.add_argument("--split", default="dev")
    p.add_argument("--depth", type=int, default=200)
    p.add_argument("--rerank", action="store_true")
    args = p.parse_args()

    settings = Settings(home=args.home)
    services = Services(settings)
    got = services.indexer.reader_store().collection.get(include=["documents", "metadatas", "embeddings"])
    texts: list[str] = got["documents"]
    metas: list[dict[str, Any]] = got["metadatas"]
    plain_vectors = np.asarray(got["embeddings"], dtype=np.float32)
    beir = read_beir(datasets_dir() / "nfcorpus", args.split)
    corpus = read_beir(datasets_dir() / "nfcorpus", "test").corpus  # the corpus is the same for every split
    doc_of = {m["source"]: Path(m["source"]).stem for m in metas}  # NFCorpus ids are safe file names
    with_title = [titled(t, corpus[doc_of[m["source"]]].title) for t, m in zip(texts, metas, strict=True)]
    changed = [i for i, (a, b) in enumerate(zip(texts, with_title, strict=True)) if a != b]
    print(f"{len(texts)} chunks, {len(changed)} without their title", flush=True)

    cache = args.home / "title-vectors.npy"
    if cache.is_file():
        titled_vectors = np.load(cache)
    else:
        t0 = time.perf_counter()
        titled_vectors = plain_vectors.copy()
        titled_vectors[changed] = services.embedder.embed_documents([with_title[i] for i in changed])
        print(f"embedded {len(changed)} titled chunks in {time.perf_counter() - t0:.0f} s", flush=True)
        np.save(cache, titled_vectors)

    queries = beir.queries
    query_vectors = {q: services.embedder.embed_query(text)[0] for q, text in queries.items()}
    pairs = enumerate(zip(texts, metas, strict=True))
    chunks = [Chunk(str(i), m["doc_id"], m["source"], None, 0, 0, t) for i, (t, m) in pairs]

    def dense(vectors: npt.NDArray[np.float32]) -> Callable[[str], list[int]]:
        return lambda q: [int(i) for i in np.argsort(-(vectors @ query_vectors[q]))[: args.depth]]

    def sparse(docs: list[str]) -> Callable[[str], list[int]]:
        index = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
        index.index([tokenize(t) for t in docs], show_progress=False)

        def search(q: str) -> list[int]:
            scores = index.get_scores(tokenize(queries[q]))
            return [int(i) for i in np.argsort(-scores)[: args.depth] if scores[i] > 0]

        return search

    def doc_ranking(rows: Sequence[int]) -> dict[str, float]:
        return doc_run([ScoredChunk(chunks[i], 0.0) for i in rows], doc_of)

    results: dict[str, dict[str, float]] = {}
    hybrid_rows: dict[str, dict[str, list[int]]] = {}
    weights = (settings.rrf_dense_weight, settings.rrf_bm25_weight)
    for name, d, b in (
        ("d0b0", dense(plain_vectors), sparse(texts)),
        ("d1b1", dense(titled_vectors), sparse(with_title)),
    ):
        runs: dict[str, dict[str, dict[str, float]]] = {"dense": {}, "bm25": {}, "hybrid": {}}
        hybrid_rows[name] = {}
        for q in queries:
            d_rows, b_rows = d(q), b(q)
            h_rows = rrf_rows([d_rows, b_rows], weights, settings.rrf_k, args.depth)
            hybrid_rows[name][q] = h_rows
            for mode, rows in (("dense", d_rows), ("bm25", b_rows), ("hybrid", h_rows)):
                runs[mode][q] = doc_ranking(rows)
        for mode, run in runs.items():
            results[f"{name} {mode}"] = evaluate(beir.qrels, run, METRICS)
            print(f"{name} {mode}", json.dumps(rounded(results[f"{name} {mode}"])), flush=True)
    if args.rerank:
        reranker = services.reranker
        if reranker is None:
            raise SystemExit("--rerank needs the reranker (RAG_RERANKER_MODEL is 'none').")
        for name, passages in (("d0b0", texts), ("d1b1", texts), ("d1b1", with_title)):
            label = f"{name} hybrid+rerank ({'titled' if passages is with_title else 'plain'} passages)"
            run = {}
            for q, rows in hybrid_rows[name].items():
                hits = [ScoredChunk(Chunk(str(i), "", chunks[i].source, None, 0, 0, passages[i]), 0.0) for i in rows]
                ranked = rerank(queries[q], hits, reranker, settings.rerank_top_n, settings.rerank_keep_first_stage)
                run[q] = doc_ranking([int(h.chunk.id) for h in ranked])
            results[label] = evaluate(beir.qrels, run, METRICS)
            print(label, json.dumps(rounded(results[label])), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
