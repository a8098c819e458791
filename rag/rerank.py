"""Second stage: a cross-encoder reads each (question, passage) pair and re-orders the top-N.

The default is our own MiniLM cross-encoder trained by ``python -m rag.train.reranker`` and
shipped in models/reranker/ (see its README). Any sentence-transformers CrossEncoder (a Hugging
Face id such as ``cross-encoder/ms-marco-MiniLM-L6-v2`` or a folder) can replace it with
``RAG_RERANKER_MODEL``; ``none`` turns the stage off.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from rag.config import Settings
from rag.fusion import reciprocal_rank_fusion
from rag.interfaces import Reranker
from rag.models import offline_by_default, pad_batches_for_cpu_attention, pick_device, resolve_reranker, use_bf16
from rag.types import ScoredChunk

# The shipped cross-encoder's score (a sigmoid probability) under which a passage is taken not to
# answer the question: such passages are never shown to the generator, and a question none of
# whose passages reaches it is refused without asking the model ("What is the capital of
# Australia?" over the bundled samples: its best passage scores 0.107). Chosen with
# `python -m rag.eval floor` on the train side of the SQuAD split, never on the dev articles the
# answer figures come from: at 0.15 the passage holding the answer survives for 99.0% of 300
# answerable questions, and 11% of 150 questions about articles not indexed are refused before
# the generator is asked (0.1: 99.7% / 4.7%; 0.2: 98.3% / 25%). Looking related is not answering,
# so most such questions still reach the generator, which must refuse them itself.
PACKAGED_RELEVANCE_FLOOR = 0.15


class CrossEncoderReranker:
    """Implements :class:`rag.interfaces.Reranker` with sentence-transformers' CrossEncoder.

    ``floor``: the score under which a passage does not answer a question (the shipped model's
    :data:`PACKAGED_RELEVANCE_FLOOR`; none for another cross-encoder, whose scores differ)."""

    def __init__(self, settings: Settings) -> None:
        offline_by_default()
        import torch
        from sentence_transformers.cross_encoder import CrossEncoder

        self.name = settings.reranker_model
        self.path = resolve_reranker(settings.reranker_model)
        self.floor = PACKAGED_RELEVANCE_FLOOR if settings.reranker_model == "packaged" else float("-inf")
        self.device = pick_device(settings.device)
        self.bf16 = use_bf16(settings, self.device)
        self.batch_size = settings.tuning.rerank_batch_size
        self.pass_overhead_tokens = settings.tuning.rerank_pass_overhead_tokens  # CPU only: see score()
        # The shipped weights are fp16 on disk (size). Computed with bf16 *weights* where the CPU
        # has native bf16, as the embedder is (no autocast re-casting every weight per batch), else
        # fp32; batches padded to a multiple of 16 tokens on CPU (torch's flash-attention kernel is
        # up to 2x slower at odd lengths; padding is masked out). 30 NFCorpus pairs, measured:
        # fp32 + autocast at 256 tokens 765 ms, bf16 weights 719 ms, bf16 at 160 tokens 401 ms.
        self.model = CrossEncoder(
            self.path,
            device=self.device,
            max_length=settings.tuning.reranker_max_length,
            model_kwargs={"dtype": torch.bfloat16 if self.bf16 else torch.float32},
        )
        self.pad_multiple = pad_batches_for_cpu_attention(self.model, self.device)
        from rag.prepack import prepack_if_enabled  # imports torch: load time only

        # pre-packed oneDNN linears where the CPU has bf16 (30 pairs: p50 530 -> 428 ms; rag/prepack.py)
        self.prepacked = prepack_if_enabled(self.model, settings.tuning.cpu_prepack, self.device, self.bf16)
        self._lock = threading.Lock()  # one forward pass at a time: two on 2 cores slow each other down

    def score(self, question: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        pairs = [(question, p) for p in passages]
        with self._lock:
            if self.device != "cpu":  # a GPU gains nothing from shaving padding off a small batch
                return [float(x) for x in self._predict(pairs, self.batch_size)]
            # On CPU, passes of similar length (length_batches): no short pair padded to a long one's length.
            scores = np.zeros(len(pairs), dtype=np.float32)
            for batch in length_batches(self._lengths(pairs), self.batch_size, self.pass_overhead_tokens):
                scores[batch] = self._predict([pairs[i] for i in batch], len(batch))
        return [float(x) for x in scores]

    def _predict(self, pairs: Sequence[tuple[str, str]], batch_size: int) -> npt.NDArray[np.float32]:
        out = self.model.predict(
            list(pairs),
            batch_size=batch_size,
            show_progress_bar=False,
            activation_fn=None,  # the model's own activation (sigmoid for ours): only the order matters
            convert_to_numpy=True,
        )
        return np.asarray(out, dtype=np.float32).reshape(-1)

    def _lengths(self, pairs: Sequence[tuple[str, str]]) -> list[int]:
        """Tokens of each pair as the model will read it (truncated, padded to the CPU multiple)."""
        enc = self.model.tokenizer(
            [q for q, _ in pairs], [p for _, p in pairs], truncation=True, max_length=self.model.max_seq_length
        )
        m = self.pad_multiple
        return [-(-len(ids) // m) * m for ids in enc["input_ids"]]


def length_batches(lengths: Sequence[int], max_batch: int, overhead: float = 64.0) -> list[list[int]]:
    """Split items into forward passes that waste little compute on padding.

    A batch costs (its size x its longest item) padded tokens, plus ``overhead`` token-equivalents
    for the pass itself. Items are taken longest first and cut where the total cost is lowest
    (an exact O(n^2) dynamic programme over the sorted order), at most ``max_batch`` per pass.
    Returns lists of indices into ``lengths``, longest first.

    Why: 30 reranker pairs of 25 to 160 tokens in one batch are all padded to 160; on 2 CPU
    cores that one pass took 830 ms against ~620 ms in passes of similar lengths (same scores).

    >>> length_batches([160, 30, 150, 25, 158], max_batch=32, overhead=48)
    [[0, 4, 2], [1, 3]]
    >>> length_batches([160, 30, 150, 25, 158], max_batch=32, overhead=1000)  # passes are dear: one
    [[0, 4, 2, 1, 3]]
    >>> length_batches([100, 100, 100], max_batch=2, overhead=0)  # ties: any split costs the same
    [[0], [1, 2]]
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    n = len(order)
    best = [0.0] + [float("inf")] * n  # best[i]: cheapest split of the first i sorted items
    cut = [max(0, i - max_batch) for i in range(n + 1)]  # kept if every cost is inf (overhead=inf)
    for i in range(1, n + 1):
        for j in range(max(0, i - max_batch), i):  # the batch is sorted items j..i-1; j is its longest
            cost = best[j] + overhead + (i - j) * lengths[order[j]]
            if cost < best[i]:
                best[i], cut[i] = cost, j
    batches: list[list[int]] = []
    i = n
    while i > 0:
        batches.append(order[cut[i] : i])
        i = cut[i]
    return batches[::-1]


def rerank(
    question: str, hits: Sequence[ScoredChunk], reranker: Reranker, top_n: int, keep_first_stage: float = 0.0
) -> list[ScoredChunk]:
    """Re-score the first ``top_n`` hits with the cross-encoder and re-order them; hits after
    ``top_n`` follow in their first-stage order.

    ``keep_first_stage`` = 0 orders by the cross-encoder alone (scores are its outputs: sigmoid
    probabilities for the shipped model). Above 0, the cross-encoder's order and the first-stage
    order are fused by RRF (k=60), the first stage weighted by this value (1 = equal say; scores
    are fused RRF scores): a hedge for corpora unlike the reranker's training data.

    >>> from rag.types import Chunk
    >>> class Lengthy:
    ...     name = "len"
    ...     def score(self, q, ps): return [float(len(p)) for p in ps]
    >>> texts = ["a", "ccc", "bb", "dddd"]
    >>> hs = [ScoredChunk(Chunk(str(i), "d", "s", None, 0, len(t), t), 0.0) for i, t in enumerate(texts)]
    >>> [h.chunk.text for h in rerank("q", hs, Lengthy(), top_n=3)]
    ['ccc', 'bb', 'a', 'dddd']
    >>> [h.chunk.text for h in rerank("q", hs, Lengthy(), top_n=3, keep_first_stage=1.0)]
    ['ccc', 'a', 'bb', 'dddd']
    """
    return rerank_scored(question, hits, reranker, top_n, keep_first_stage)[0]


def rerank_scored(
    question: str, hits: Sequence[ScoredChunk], reranker: Reranker, top_n: int, keep_first_stage: float = 0.0
) -> tuple[list[ScoredChunk], dict[str, float]]:
    """:func:`rerank`, plus the cross-encoder's own score of each re-scored chunk (by chunk id),
    which the fused order's scores no longer show."""
    head, tail = list(hits[:top_n]), list(hits[top_n:])
    scores = reranker.score(question, [h.chunk.text for h in head])
    by_id = {h.chunk.id: s for h, s in zip(head, scores, strict=True)}
    order = sorted(range(len(head)), key=lambda i: -scores[i])
    if keep_first_stage <= 0:
        return [ScoredChunk(head[i].chunk, scores[i]) for i in order] + tail, by_id
    fused = reciprocal_rank_fusion([order, list(range(len(head)))], weights=[1.0, keep_first_stage], k=60.0)
    return [ScoredChunk(head[i].chunk, s) for i, s in fused] + tail, by_id
