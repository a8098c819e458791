"""Constants tuned on dev sets or measured for speed, each next to the reason for its value.

They are not operator settings: the environment cannot change them. Evaluation code that
sweeps one passes another :class:`Tuning` (``settings.model_copy(update={"tuning":
replace(settings.tuning, rrf_k=30)})``), and ``python -m rag.eval --tune rrf_k=30 ...`` changes
the defaults for one evaluation run (:func:`tune`). The figures come from docs/quality.md,
docs/performance.md and docs/decisions/.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Tuning:
    # --- ingest and embedding ----------------------------------------------------------------
    # Ingest embeds chunks of several files together, about this many per batch: one encode
    # call sorts them by length, so larger batches waste less padding (1,024 encoded ~7% faster
    # than 256); an interrupted ingest redoes at most one batch.
    ingest_batch_chunks: int = 1024
    # Chunks per embedding forward pass; None: 16 on a CPU without bf16 (fp32 activations of
    # 32 x ~200 tokens outgrow the cache: 36 vs 42 chunks/s for 16 on a 2-core AMD EPYC), else 32
    # (bf16 CPUs, where 64 was slower, and GPUs).
    embedding_batch_size: int | None = None
    # Pre-pack the embedder's and reranker's linear layers for oneDNN with the GELU fused in
    # (rag/prepack.py): ~20% faster encoding and reranking. "auto": on CPU with bf16 weights.
    cpu_prepack: Literal["auto", "off"] = "auto"

    # --- first stage: dense + BM25, fused -------------------------------------------------------
    # Depth of each first-stage list and of the fused list the reranker sees.
    candidates: int = 30
    # RRF: a hit at rank r adds weight/(rrf_k + r); k 60 and weights 1:1 were best on NFCorpus
    # dev among those tried (docs/decisions/bench-tune-fusion.md).
    rrf_k: float = 60.0
    rrf_dense_weight: float = 1.0
    rrf_bm25_weight: float = 1.0
    # Pseudo-relevance feedback: the best `feedback_chunks` hits of the first fusion widen the
    # question (BM25 gets their `feedback_terms` heaviest terms, the heaviest weighted
    # `feedback_bm25_weight` against a question term; dense search adds `feedback_dense_weight`
    # times their mean vector) and both lists are fetched and fused again, the first-pass lists
    # weighted `feedback_keep_first_pass`. ~30 ms; NFCorpus test hybrid nDCG@10 0.352 -> 0.370.
    # Keeping the first pass guards exact-match questions: on SQuAD, 0 cost 9 points of hybrid
    # recall@1, 0.5 under one (docs/decisions/bench-feedback-grid.md). 0 chunks turns it off.
    feedback_chunks: int = 3
    feedback_terms: int = 10
    feedback_bm25_weight: float = 0.5
    feedback_dense_weight: float = 1.0
    feedback_keep_first_pass: float = 0.5
    # Cosine similarity below which a dense hit is irrelevant; when no chunk reaches it the app
    # abstains without calling the generator (whatever BM25 matched).
    min_relevance: float = 0.25

    # --- reranking ------------------------------------------------------------------------------
    # Fused candidates the cross-encoder re-scores: fewer than 30 cost 8 points of SQuAD
    # recall@1 (docs/decisions/reranker.md); cost grows linearly.
    rerank_top_n: int = 30
    # The cross-encoder's order is fused by RRF with the first-stage order weighted this much
    # (0: its order alone). 1 was best on NFCorpus dev for the shipped reranker: 0.331 against
    # 0.320 for its order alone and 0.327 for hybrid (docs/decisions/bench-tune-fusion.md).
    rerank_keep_first_stage: float = 1.0
    # Tokens of (question + passage) the cross-encoder reads per pair: the length the shipped
    # reranker was trained at (30 pairs: 401 ms vs 719 ms at 256).
    reranker_max_length: int = 160
    # Most pairs in one cross-encoder forward pass.
    rerank_batch_size: int = 32
    # CPU: pairs are grouped by length into passes, a new pass starting where the padding it
    # saves is worth more than this many tokens (a pass's fixed cost). Same scores; 30 NFCorpus
    # pairs fp32 on 2 cores: p50 820-970 ms in one pass, 610-650 ms split.
    rerank_pass_overhead_tokens: float = 256.0

    # --- generation -----------------------------------------------------------------------------
    # Discourages the small model from looping.
    repetition_penalty: float = 1.1
    # The local model may start the abstention phrase only when it gives that phrase's first
    # token at least this probability; below, it must write its best answer, which the checks
    # then verify. 0 lets greedy decoding decide. With the shipped adapter on the SQuAD dev
    # articles: 0 refused 31% of answerable questions, 0.9 refused 2% but answered 20% of those
    # about articles not indexed (docs/decisions/abstention-gate.md). Local backend only.
    abstain_min_prob: float = 0.8
    # Each source passage is cut to this many characters in the prompt (the adapter was trained
    # at this length).
    max_source_chars: int = 1200
    # Decode with int8 copies of the generator's weights (prefill keeps the dense ones); "auto":
    # on CPU, where one-token steps are bound by memory traffic: 23-28 vs 14-16 tokens/s over a
    # ~1,000-token prompt, same greedy tokens.
    llm_int8_decode: Literal["auto", "on", "off"] = "auto"
    # Keep the KV cache of what every prompt starts with (chat template + system prompt, 108
    # tokens) and prefill only the rest (docs/performance.md).
    llm_prefix_cache: bool = True


_current = Tuning()


def current() -> Tuning:
    """The constants new settings start from: :class:`Tuning`'s own unless :func:`tune` changed them."""
    return _current


def tune(assignments: list[str]) -> Tuning:
    """Change the constants new settings start from, for this process (evaluation CLIs only);
    each assignment is ``name=value``, the value parsed as the field's type.

    >>> tune(["rrf_k=30", "llm_prefix_cache=false"]).rrf_k, current().llm_prefix_cache
    (30.0, False)
    >>> _ = tune([])  # back to the defaults
    >>> tune(["no_such=1"])
    Traceback (most recent call last):
    ...
    ValueError: no tuned constant is called no_such; see rag/tuning.py
    """
    global _current
    fields = {f.name: f for f in dataclasses.fields(Tuning)}
    changes: dict[str, Any] = {}
    for item in assignments:
        name, _, raw = item.partition("=")
        if name not in fields:
            raise ValueError(f"no tuned constant is called {name}; see rag/tuning.py")
        default = getattr(Tuning(), name)
        if isinstance(default, bool):
            changes[name] = raw.strip().lower() in ("1", "true", "yes", "on")
        elif isinstance(default, int):
            changes[name] = int(raw)
        elif isinstance(default, float):
            changes[name] = float(raw)
        elif default is None:
            changes[name] = int(raw) if raw.strip().lower() not in ("", "none") else None
        else:
            changes[name] = raw
    _current = dataclasses.replace(Tuning(), **changes)
    return _current
