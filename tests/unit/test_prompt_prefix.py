"""rag.kv_cache.PromptPrefix: a prompt that starts with the cached prefix's tokens must decode
exactly what a full prefill decodes, on the eager (growing) cache and on the static cache the
compiled decode step uses; a tiny random Llama stands in for the generator."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, LogitsProcessorList

from rag.decode import next_tokens
from rag.kv_cache import prompt_prefix


@pytest.fixture(scope="module")
def model() -> Any:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        initializer_range=0.5,  # far from uniform outputs, so a wrong position or key shows
    )
    return LlamaForCausalLM(config).eval()


def _decode(model: Any, prompt: list[int], **kwargs: Any) -> tuple[list[int], list[torch.Tensor]]:
    """-> (the tokens decoded, each step's scores), the scores as the logits processors see them."""
    seen: list[torch.Tensor] = []

    def record(input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        seen.append(scores.clone())
        return scores

    tokens = list(next_tokens(model, torch.tensor([prompt]), LogitsProcessorList([record]), 12, set(), False, **kwargs))
    return tokens, seen


@pytest.mark.parametrize("static", [False, True], ids=["growing cache", "static cache"])
def test_a_prompt_on_the_cached_prefix_decodes_what_a_full_prefill_decodes(model: Any, static: bool) -> None:
    g = torch.Generator().manual_seed(1)
    system = torch.randint(0, 64, (20,), generator=g).tolist()
    prefix = prompt_prefix(model, system)
    step = model.forward if static else None  # the static-cache path, uncompiled
    for question in range(3):
        prompt = system + torch.randint(0, 64, (15 + 5 * question,), generator=g).tolist()
        tokens, scores = _decode(model, prompt, step=step)
        seeded_tokens, seeded_scores = _decode(model, prompt, step=step, prefix_kv=prefix.reusable(prompt))
        assert seeded_tokens == tokens
        for seeded, full in zip(seeded_scores, scores, strict=True):
            torch.testing.assert_close(torch.softmax(seeded, -1), torch.softmax(full, -1), atol=1e-5, rtol=0)


def test_only_the_shared_start_is_reused_and_never_the_last_token(model: Any) -> None:
    prefix = prompt_prefix(model, [5, 6, 7, 8, 9])
    assert [k.shape[-2] for k, _ in prefix.kv] == [5, 5]  # (1, kv heads, tokens, head dim) per layer
    assert [k.shape[-2] for k, _ in prefix.reusable([5, 6, 7, 1, 2])] == [3, 3]
    assert [k.shape[-2] for k, _ in prefix.reusable([5, 6, 7, 8, 9])] == [4, 4]  # the last one's logits are needed
    assert prefix.reusable([1, 5, 6]) == []
    partial = prefix.reusable([5, 6, 7, 1, 2])
    assert torch.equal(partial[1][1], prefix.kv[1][1][..., :3, :])
