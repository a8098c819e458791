"""Bi-encoder embeddings with sentence-transformers (bf16 autocast where the CPU supports it)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence

import numpy as np

from rag.config import Settings
from rag.interfaces import Vectors
from rag.models import autocast, offline_by_default, pick_device, resolve_embedding_model, use_bf16


class SentenceTransformerEmbedder:
    """Implements :class:`rag.interfaces.Embedder`."""

    def __init__(self, settings: Settings) -> None:
        offline_by_default()
        from sentence_transformers import SentenceTransformer

        self.name = settings.embedding_model
        self.path = resolve_embedding_model(settings.embedding_model)
        self.device = pick_device(settings.device)
        self.bf16 = use_bf16(settings, self.device)
        self.batch_size = settings.embedding_batch_size
        self.model = SentenceTransformer(self.path, device=self.device)
        self.dim = int(self.model.get_embedding_dimension() or 0)
        # A separate copy for counting: chunking runs in a parsing thread beside encode(), and a
        # fast tokenizer shared by two threads can fail with "Already borrowed".
        self.tokenizer = copy.deepcopy(self.model.tokenizer)
        # torch modules are not re-entrant across threads for autocast state; serialise calls.
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def _encode(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock, autocast(self.device, self.bf16):
            out = self.model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(out, dtype=np.float32)

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts)

    def embed_query(self, text: str) -> Vectors:
        return self._encode([text])
