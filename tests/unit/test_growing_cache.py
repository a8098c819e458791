"""rag.kv_cache.growing_cache: the decode loop's KV cache appends in place but must hold exactly
what transformers' concatenating DynamicCache holds."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from rag.kv_cache import growing_cache


def test_growing_cache_matches_concatenation_across_reallocations() -> None:
    model = SimpleNamespace(config=SimpleNamespace(sliding_window=None, layer_types=None))
    cache = growing_cache(model)
    torch.manual_seed(0)
    expected_k: list[torch.Tensor] = []
    expected_v: list[torch.Tensor] = []
    for step, n in enumerate([300, 1, 1, 250, 1, 400]):  # a prefill, steps, and growth past the room
        k, v = torch.randn(1, 3, n, 8), torch.randn(1, 3, n, 8)
        expected_k.append(k)
        expected_v.append(v)
        for layer in range(2):
            keys, values = cache.update(k + layer, v - layer, layer)
            assert torch.equal(keys, torch.cat(expected_k, dim=-2) + layer), step
            assert torch.equal(values, torch.cat(expected_v, dim=-2) - layer), step
    assert cache.get_seq_length() == 953
    cache.crop(-3)
    assert cache.get_seq_length() == 950
    keys, _ = cache.update(torch.zeros(1, 3, 1, 8), torch.zeros(1, 3, 1, 8), 0)
    assert keys.shape[-2] == 951 and torch.equal(keys[..., :950, :], torch.cat(expected_k, dim=-2)[..., :950, :])


def test_models_with_sliding_windows_keep_the_stock_cache() -> None:
    from transformers import MistralConfig

    config = MistralConfig(num_hidden_layers=2, sliding_window=16, hidden_size=32, num_attention_heads=4)
    cache = growing_cache(SimpleNamespace(config=config))
    assert [type(layer).__name__ for layer in cache.layers] == ["DynamicSlidingWindowLayer"] * 2
    plain = growing_cache(SimpleNamespace(config=SimpleNamespace(sliding_window=None, layer_types=None)))
    assert plain.layer_class_to_replicate.__name__ == "GrowingLayer"
