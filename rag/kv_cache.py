"""The local generator's KV cache: one that grows in place, and the keys and values of what
every prompt starts with (chat template and system prompt), computed once and reused.

The growing cache subclasses transformers' ``DynamicLayer``, an internal class
(:func:`rag.internals.dynamic_layer_class`, checked by tests/unit/test_internals.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from rag.internals import cache_of_layers, dynamic_layer_class


def full_attention_only(config: Any) -> bool:
    """Whether every layer of the model attends to the whole sequence (no sliding window, no
    special layers), so that a cache can be grown, or seeded with a prompt's start, by appending."""
    types = getattr(config, "layer_types", None) or []
    return not getattr(config, "sliding_window", None) and all(t == "full_attention" for t in types)


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    """How many tokens ``a`` and ``b`` share from the start.

    >>> common_prefix_len([1, 2, 3], [1, 2, 4, 5]), common_prefix_len([1], [2]), common_prefix_len([], [1])
    (2, 0, 0)
    """
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


@lru_cache(maxsize=1)
def _growing_layer() -> type:
    """A ``DynamicLayer`` that appends into spare room, doubling it when full, instead of
    concatenating all cached keys and values at every step."""
    base: Any = dynamic_layer_class()

    class GrowingLayer(base):
        def lazy_initialization(self, key_states: Any, value_states: Any) -> None:
            super().lazy_initialization(key_states, value_states)
            self._k: Any = None
            self._v: Any = None
            self._n = 0

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            n, new = self._n, key_states.shape[-2]
            if self._k is None or n + new > self._k.shape[-2]:
                room = max(2 * (n + new), 256)  # (batch, heads, room, head_dim)
                k = key_states.new_empty((*key_states.shape[:-2], room, key_states.shape[-1]))
                v = value_states.new_empty((*value_states.shape[:-2], room, value_states.shape[-1]))
                if n:
                    k[..., :n, :] = self._k[..., :n, :]
                    v[..., :n, :] = self._v[..., :n, :]
                self._k, self._v = k, v
            self._k[..., n : n + new, :] = key_states
            self._v[..., n : n + new, :] = value_states
            self._n = n + new
            self.keys, self.values = self._k[..., : self._n, :], self._v[..., : self._n, :]
            return self.keys, self.values

        def crop(self, tokens_to_remove: int) -> None:
            super().crop(tokens_to_remove)
            if self.is_initialized and self.keys is not None:
                self._n = self.keys.shape[-2]

    return GrowingLayer


def growing_cache(model: Any) -> Any:
    """A DynamicCache whose layers append into spare room instead of concatenating the whole
    cache at every step (transformers' DynamicLayer copies all cached keys and values per token:
    12% of a decode step's CPU time here; this raised decoding 5-12%, the same tokens).
    Models with sliding-window or other special layers keep the stock cache."""
    from transformers import DynamicCache

    if not full_attention_only(model.config):
        return DynamicCache(config=model.config)
    return cache_of_layers(_growing_layer())


@dataclass
class PromptPrefix:
    """What every prompt starts with (chat template and system prompt), run through the model
    once: its token ids and each layer's keys and values, (1, kv_heads, len(ids), head_dim).

    A causal model's keys and values at a position depend only on the tokens up to it, so a
    prompt that starts with ``ids`` can take them as they are and prefill only its own tokens
    (measured: docs/performance.md)."""

    ids: list[int]
    kv: list[tuple[Any, Any]]

    def reusable(self, prompt: Sequence[int]) -> list[tuple[Any, Any]]:
        """The keys and values of the tokens ``prompt`` shares with ``ids``; the prompt's last
        token is always left out, since its logits are needed."""
        k = min(common_prefix_len(self.ids, prompt), len(prompt) - 1)
        return [(key[..., :k, :], value[..., :k, :]) for key, value in self.kv] if k > 0 else []


def prefix_length(prefix_kv: Sequence[tuple[Any, Any]]) -> int:
    """How many tokens the per-layer keys and values of :meth:`PromptPrefix.reusable` cover."""
    return int(prefix_kv[0][0].shape[-2]) if prefix_kv else 0


def prompt_prefix(model: Any, ids: list[int]) -> PromptPrefix:
    """Run ``ids`` through ``model`` (a full-attention causal LM) and keep their keys and values."""
    import torch

    cache = growing_cache(model)
    with torch.inference_mode():
        x = torch.tensor([ids], device=next(model.parameters()).device)
        model(input_ids=x, past_key_values=cache, use_cache=True, logits_to_keep=1)
    return PromptPrefix(ids, [(layer.keys.clone(), layer.values.clone()) for layer in cache.layers])
