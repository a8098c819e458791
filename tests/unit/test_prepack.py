"""Pre-packed oneDNN linears (rag/prepack.py) compute what the modules they replace computed."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from rag.prepack import PackedLinear, prepack_available, prepack_linears

BF16 = prepack_available("cpu", True)
needs_bf16 = pytest.mark.skipif(not BF16, reason="this CPU or torch build has no oneDNN bf16")


def tiny_bert(hidden_act: str = "gelu") -> Any:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        hidden_act=hidden_act,
    )
    return BertModel(config).eval()


def test_packed_linear_matches_nn_linear_in_fp32() -> None:
    torch.manual_seed(0)
    linear = nn.Linear(16, 24)
    x = torch.randn(2, 5, 16)  # any leading shape, as nn.Linear takes
    packed = PackedLinear(linear)
    torch.testing.assert_close(packed(x), linear(x), atol=1e-5, rtol=1e-5)
    assert (packed.in_features, packed.out_features) == (16, 24)


def test_fused_gelu_is_the_exact_erf_gelu() -> None:
    torch.manual_seed(0)
    linear = nn.Linear(16, 24)
    x = torch.randn(7, 16) * 3
    torch.testing.assert_close(PackedLinear(linear, "gelu")(x), nn.functional.gelu(linear(x)), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="unsupported fused activation"):
        PackedLinear(linear, "relu6")


def test_only_cpu_with_bf16_weights_is_packed() -> None:
    assert not prepack_available("cuda", True)
    assert not prepack_available("cpu", False)


@needs_bf16
def test_bert_in_bf16_gives_the_same_outputs_packed() -> None:
    model = tiny_bert().to(torch.bfloat16)
    ids = torch.randint(0, 64, (3, 16))
    mask = torch.ones_like(ids)
    mask[0, 10:] = 0  # a padded row, as in a real batch
    with torch.inference_mode():
        before = model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        n_linear = sum(isinstance(m, nn.Linear) for m in model.modules())
        assert prepack_linears(model) == n_linear == 2 * 6 + 1  # q, k, v, out, ffn up/down; pooler
        after = model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
    assert not any(isinstance(m, nn.Linear) for m in model.modules())
    ffn = model.encoder.layer[0].intermediate
    assert isinstance(ffn.intermediate_act_fn, nn.Identity) and ffn.dense.activation == "gelu"
    cos = nn.functional.cosine_similarity(before.flatten(1), after.flatten(1))
    assert float(cos.min()) > 0.999, cos


@needs_bf16
def test_an_approximate_gelu_is_not_fused() -> None:
    model = tiny_bert(hidden_act="gelu_new").to(torch.bfloat16)  # tanh approximation: keep it apart
    prepack_linears(model)
    ffn = model.encoder.layer[0].intermediate
    assert ffn.dense.activation == "none"
    assert not isinstance(ffn.intermediate_act_fn, nn.Identity)
