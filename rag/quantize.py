"""Int8 weight-only linears for CPU decoding: the generator's one-token steps read half the bytes.

Decoding one token at a time is a matrix-*vector* product per layer, so its speed is set by how
fast the weights stream from memory, and torch's bf16 kernel for one row is slow (measured here:
a 1x576 @ 576x1536 bf16 product took 109 us, fp32 53 us, int8 weights 52 us; the 49,152-row
output layer 5.4 ms, 5.1 ms and 1.4 ms). :class:`Int8DecodeLinear` keeps a per-row int8 copy of
each weight for those steps (:func:`rag.internals.int8_rows_matmul`) and the dense bf16 weight for the
prompt's prefill, where the AMX matrix-matrix kernels are fast. Measured on a ~1,000-token prompt:
bf16 14-16 tokens/s, int8 decode 23-28 tokens/s, the same 48 greedy tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from rag.internals import has_int8_rows_matmul, int8_rows_matmul

# Rows (tokens) up to which a call counts as a decoding step; prefill passes hundreds.
DECODE_ROWS = 8


def quantize_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8: ``weight ~= q * scale[:, None]``.

    >>> q, s = quantize_rows(torch.tensor([[1.0, -0.5], [0.0, 0.25]]))
    >>> q.tolist(), [round(x, 5) for x in s.tolist()]
    ([[127, -64], [0, 127]], [0.00787, 0.00197])
    """
    w = weight.detach().float()
    scale = w.abs().amax(dim=1).clamp(min=1e-8) / 127.0
    q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q.contiguous(), scale


class Int8DecodeLinear(nn.Module):
    """A linear layer that multiplies short inputs (decode steps) with int8 weights and long ones
    (prefill) with the original dense weight, which it shares with the module it replaces."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        self.weight = linear.weight  # shared (tied embeddings stay tied), used for prefill
        self.bias = linear.bias
        q, scale = quantize_rows(linear.weight)
        self.qweight: torch.Tensor
        self.scales: torch.Tensor
        self.register_buffer("qweight", q, persistent=False)
        self.register_buffer("scales", scale.to(torch.bfloat16), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1])
        if rows.shape[0] > DECODE_ROWS:
            return nn.functional.linear(x, self.weight, self.bias)
        y = int8_rows_matmul(rows.to(torch.bfloat16), self.qweight, self.scales).to(x.dtype)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features)


def int8_decode_available() -> bool:
    """The kernel exists in this torch build (CPU builds since 2.3)."""
    if not has_int8_rows_matmul():
        return False
    try:
        x = torch.ones(1, 32, dtype=torch.bfloat16)
        q = torch.ones(8, 32, dtype=torch.int8)
        int8_rows_matmul(x, q, torch.ones(8, dtype=torch.bfloat16))
    except RuntimeError:
        return False
    return True


def replace_linears(model: Any, build: Callable[[nn.Module, str, nn.Linear], nn.Module]) -> int:
    """Swap every ``nn.Linear`` under ``model`` for ``build(parent, name, linear)``, in place;
    returns how many were swapped. The modules it builds are not visited again.

    >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Linear(3, 1)))
    >>> replace_linears(net, lambda parent, name, linear: nn.Identity())
    2
    >>> [type(m).__name__ for m in net.modules()]
    ['Sequential', 'Identity', 'ReLU', 'Sequential', 'Identity']
    """
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                setattr(parent, name, build(parent, name, child))
                swapped += 1
    return swapped


def quantize_for_decode(model: Any) -> int:
    """Swap every ``nn.Linear`` of ``model`` for an :class:`Int8DecodeLinear`, in place.
    Returns how many were swapped (0 when the kernel is missing)."""
    if not int8_decode_available():
        return 0
    return replace_linears(model, lambda _parent, _name, linear: Int8DecodeLinear(linear))
