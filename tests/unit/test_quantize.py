"""Int8 decode linears: close to the dense layer on decode steps, exact on prefill, tied weights kept."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rag.quantize import DECODE_ROWS, Int8DecodeLinear, int8_decode_available, quantize_for_decode

pytestmark = pytest.mark.skipif(not int8_decode_available(), reason="torch build without _weight_int8pack_mm")


def test_decode_steps_use_int8_and_stay_close_to_dense() -> None:
    torch.manual_seed(0)
    dense = nn.Linear(64, 96, bias=True).to(torch.bfloat16)
    q = Int8DecodeLinear(dense)
    x = torch.randn(1, 1, 64, dtype=torch.bfloat16)
    with torch.inference_mode():
        want, got = dense(x).float(), q(x).float()
    assert got.shape == want.shape == (1, 1, 96)
    assert torch.nn.functional.cosine_similarity(got.flatten(), want.flatten(), dim=0) > 0.999
    assert not torch.equal(got, want)  # really the int8 path, not the dense one


def test_prefill_uses_the_dense_weight_exactly() -> None:
    dense = nn.Linear(32, 48, bias=False).to(torch.bfloat16)
    q = Int8DecodeLinear(dense)
    x = torch.randn(1, DECODE_ROWS + 1, 32, dtype=torch.bfloat16)
    with torch.inference_mode():
        assert torch.equal(q(x), dense(x))


def test_quantize_for_decode_swaps_every_linear_and_keeps_tied_weights() -> None:
    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(50, 16)
            self.block = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 16))
            self.head = nn.Linear(16, 50, bias=False)
            self.head.weight = self.embed.weight  # tied, as in SmolLM2

    model = Tiny().to(torch.bfloat16)
    assert quantize_for_decode(model) == 3
    assert all(type(m) is not nn.Linear for m in model.modules())
    assert isinstance(model.head, Int8DecodeLinear)
    assert model.head.weight is model.embed.weight
