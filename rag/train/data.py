"""Training examples built by our own code from ../shared/datasets.

- :func:`mine` ranks a corpus for each query with our own retrievers (BM25 from
  :mod:`rag.sparse`, dense with the packaged embedder, fused with RRF): the source of hard
  negatives for the reranker and of realistic distractor passages for the LoRA data.
- :func:`nfcorpus_pairs` turns NFCorpus train qrels into (query, passage, label) pairs with
  mined hard negatives; :func:`squad_questions` samples SQuAD questions per paragraph.

Never reads NFCorpus test qrels; SQuAD is split by article with
:func:`rag.eval.datasets.split_articles` so dev articles stay unseen.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.eval.datasets import Qrels, SquadArticle
from rag.fusion import reciprocal_rank_fusion
from rag.interfaces import Embedder
from rag.sparse import BM25Index
from rag.sparse_tokens import tokenize


@dataclass(frozen=True)
class Pair:
    query: str
    passage: str
    label: float  # 1.0 relevant, 0.0 not


def mine(
    queries: Sequence[str],
    passages: Sequence[str],
    embedder: Embedder,
    depth: int = 30,
    passage_vectors: np.ndarray | None = None,
) -> list[list[int]]:
    """For each query, the indices of the top ``depth`` passages by hybrid (BM25 + dense, RRF
    k=60) retrieval, best first. Shapes: passages (n,), vectors (n, dim)."""
    bm25 = BM25Index([str(i) for i in range(len(passages))], [tokenize(p) for p in passages])
    vecs = passage_vectors if passage_vectors is not None else embedder.embed_documents(list(passages))
    qvecs = embedder.embed_documents(list(queries))
    out = []
    for qi, q in enumerate(queries):
        sparse = [h.index for h in bm25.search(tokenize(q), depth)]
        sims = vecs @ qvecs[qi]
        k = min(depth, len(passages))
        dense = np.argpartition(-sims, k - 1)[:k]
        dense = dense[np.argsort(-sims[dense])]
        fused = reciprocal_rank_fusion([sparse, [int(i) for i in dense]])
        out.append([i for i, _ in fused[:depth]])
    return out


def pick_negatives(
    ranked: Sequence[int], exclude: set[int], hard: int, random_n: int, n_total: int, rng: random.Random
) -> list[int]:
    """``hard`` negatives from the top of our retriever's ranking plus ``random_n`` drawn from the
    whole corpus (never an index in ``exclude``). Random negatives teach topical relevance fast;
    with hard ones only, the binary loss settled on a constant (chance loss for 150 steps).

    >>> pick_negatives([5, 1, 2, 3], {1}, 2, 1, 10, random.Random(0))[:2]
    [5, 2]
    """
    out = [i for i in ranked if i not in exclude][:hard]
    tries = 0
    while len(out) < hard + random_n and tries < 100:
        j = rng.randrange(n_total)
        tries += 1
        if j not in exclude and j not in out:
            out.append(j)
    return out


def nfcorpus_pairs(
    queries: dict[str, str],
    qrels: Qrels,
    doc_ids: Sequence[str],
    doc_texts: Sequence[str],
    ranked: dict[str, list[int]],
    positives_per_query: int = 1,
    hard_negatives: int = 1,
    random_negatives: int = 2,
    seed: int = 0,
    ranked_positives_only: bool = False,
) -> list[Pair]:
    """Pairs from graded qrels: the most relevant documents first as positives, mined
    non-judged documents as negatives. ``ranked[qid]`` indexes ``doc_ids``.

    ``ranked_positives_only``: positives only among the judged documents our retriever ranked
    (best-ranked first). NFCorpus *train* judgments are all grade 1 and often topical at best
    ("hazelnuts" -> a trial of carotid plaque under a Mediterranean diet); the judged documents
    that also rank high are the ones a reader of the query could recognise, and they are what
    the reranker sees at run time (the first stage's top candidates).
    """
    rng = random.Random(seed)
    index = {d: i for i, d in enumerate(doc_ids)}
    pairs: list[Pair] = []
    for qid, rel in sorted(qrels.items()):
        if qid not in queries or qid not in ranked:
            continue
        judged = {index[d] for d in rel if d in index}
        if ranked_positives_only:
            pos = [doc_ids[i] for i in ranked[qid] if i in judged][:positives_per_query]
        else:
            pos = sorted((d for d in rel if d in index), key=lambda d: (-rel[d], rng.random()))[:positives_per_query]
        for d in pos:
            pairs.append(Pair(queries[qid], doc_texts[index[d]], 1.0))
            for j in pick_negatives(ranked[qid], judged, hard_negatives, random_negatives, len(doc_ids), rng):
                pairs.append(Pair(queries[qid], doc_texts[j], 0.0))
    return pairs


def squad_questions(articles: Sequence[SquadArticle], per_paragraph: int, seed: int = 0) -> list[tuple[int, str]]:
    """-> [(paragraph index over all articles, question)], ``per_paragraph`` sampled per paragraph."""
    rng = random.Random(seed)
    out = []
    paras = [p for a in articles for p in a.paragraphs]
    for pi, p in enumerate(paras):
        qs = list(p.questions)
        rng.shuffle(qs)
        out += [(pi, q.question) for q in qs[:per_paragraph]]
    return out
