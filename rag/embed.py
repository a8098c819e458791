"""Bi-encoder embeddings with sentence-transformers (bf16 weights where the CPU supports it)."""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rag.config import Settings
from rag.interfaces import Vectors
from rag.models import offline_by_default, pad_batches_for_cpu_attention, pick_device, resolve_embedding_model, use_bf16

# What BERT's normaliser and pre-tokeniser treat as whitespace (tokenizers' BertNormalizer:
# \t \n \r, Unicode Zs, and U+2028/U+2029); other control characters are deleted, not split on.
_BERT_SPACE = re.compile(r"[ \t\n\r\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")


class TokenCounter:
    """Counts a tokenizer's tokens in a text, as the splitter asks for them thousands of times.

    The recursive splitter measures every candidate piece (about 30 calls per document), and a
    call into the tokenizer costs ~1.5 ms per 1,800 characters here, which took ~8 s of CPU per
    1,000 NFCorpus documents away from the encoder. For a WordPiece tokenizer behind BERT's
    pre-tokeniser (MiniLM, BERT, BGE, E5...) the count of a text is the sum of the counts of its
    whitespace-separated words, because no token crosses whitespace; those counts are cached.
    Any other tokenizer is asked directly (still exact, only slower).

    >>> counter = TokenCounter(lambda words: [len(w) for w in words], additive=True)
    >>> counter("ab  abc\\nab")  # 2 + 3 + 2, with "ab" counted once
    7
    """

    def __init__(self, count_many: Callable[[list[str]], list[int]], additive: bool, max_cache: int = 500_000):
        self._count_many = count_many
        self._additive = additive
        self._max_cache = max_cache
        self._cache: dict[str, int] = {}
        self._lock = threading.Lock()  # the parsing thread and a caller may count at once

    @classmethod
    def for_tokenizer(cls, hf_tokenizer: Any) -> TokenCounter:
        """From a transformers tokenizer; the fast backend when it has one, without specials."""
        backend = getattr(hf_tokenizer, "backend_tokenizer", None)
        if backend is None:  # a slow (Python) tokenizer: ask it, text by text
            return cls(lambda texts: [len(hf_tokenizer.tokenize(t)) for t in texts], additive=False)
        backend = copy.deepcopy(backend)  # its own copy: a shared fast tokenizer fails across threads
        backend.no_truncation()
        backend.no_padding()
        from tokenizers import models, normalizers, pre_tokenizers

        additive = (
            isinstance(backend.model, models.WordPiece)
            and isinstance(backend.pre_tokenizer, pre_tokenizers.BertPreTokenizer)
            and (backend.normalizer is None or isinstance(backend.normalizer, normalizers.BertNormalizer))
        )

        def count_many(texts: list[str]) -> list[int]:
            return [len(e.ids) for e in backend.encode_batch(texts, add_special_tokens=False)]

        return cls(count_many, additive)

    def __call__(self, text: str) -> int:
        if not self._additive:
            return self._count_many([text])[0]
        words = [w for w in _BERT_SPACE.split(text) if w]
        with self._lock:
            cache = self._cache
            missing = list({w for w in words if w not in cache})
            if missing:
                if len(cache) + len(missing) > self._max_cache:
                    cache.clear()  # bounded memory over a huge ingest; refills from the next texts
                cache.update(zip(missing, self._count_many(missing), strict=True))
            return sum(cache[w] for w in words)


class SentenceTransformerEmbedder:
    """Implements :class:`rag.interfaces.Embedder`."""

    def __init__(self, settings: Settings) -> None:
        offline_by_default()
        from sentence_transformers import SentenceTransformer

        self.name = settings.embedding_model
        self.path = resolve_embedding_model(settings.embedding_model)
        self.device = pick_device(settings.device)
        self.bf16 = use_bf16(settings, self.device)
        self.batch_size = settings.tuning.embedding_batch_size or (16 if self.device == "cpu" and not self.bf16 else 32)
        self.model = SentenceTransformer(self.path, device=self.device)
        self.dim = int(self.model.get_embedding_dimension() or 0)
        if self.bf16:
            # bf16 *weights*, not autocast: autocast re-casts every weight at every batch; measured
            # here, bf16 weights encode ~10% faster (cosine to fp32 >= 0.9999 after re-normalising).
            import torch

            self.model.to(torch.bfloat16)
        pad_batches_for_cpu_attention(self.model, self.device)
        from rag.prepack import prepack_if_enabled  # imports torch: load time only

        # pre-packed oneDNN linears where the CPU has bf16 (~20% faster encoding; rag/prepack.py)
        self.prepacked = prepack_if_enabled(self.model, settings.tuning.cpu_prepack, self.device, self.bf16)
        # A separate copy for counting: chunking runs in a parsing thread beside encode(), and a
        # fast tokenizer shared by two threads can fail with "Already borrowed".
        self._counter = TokenCounter.for_tokenizer(self.model.tokenizer)
        # One encode at a time: two at once on 2 cores only slow each other down.
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return self._counter(text)

    def _encode(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            out = self.model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        vectors = np.asarray(out, dtype=np.float32)
        if self.bf16:  # bf16 normalisation is good to ~3 digits; make the norms exact again
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts)

    def embed_query(self, text: str) -> Vectors:
        return self._encode([text])
