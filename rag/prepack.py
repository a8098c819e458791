"""oneDNN pre-packed linears for the encoders (embedder and reranker) on CPU, bf16 weights.

A plain ``nn.Linear`` in bf16 on CPU goes through ``aten::addmm``, which copies the bias into
the output, re-lays out the weight for the AMX kernel on every call, and leaves the feed-forward
GELU to a separate pass over a (tokens x 1,536) tensor. :class:`PackedLinear` stores the weight
once in oneDNN's blocked layout (``mkldnn._reorder_linear_weight``, what Inductor's ``freezing``
does) and calls ``mkldnn._linear_pointwise``, with the BERT feed-forward's exact GELU fused into
the product (torch internals, reached through :mod:`rag.internals`). Measured on this 2-core
CPU (AVX512-BF16/AMX), MiniLM-L6, interleaved in one process:

- one (30 x 160)-token reranker forward pass: ``addmm`` 292 ms + ``gelu`` 57 ms + bias copies
  40 ms (495 ms in all) became ``_linear_pointwise`` 219 ms (372 ms in all);
- encoding 768 NFCorpus passages, medians of three interleaved rounds, three runs: plain
  45.2 / 42.1 / 40.1 chunks/s, packed 53.4 / 53.6 / 48.0 (+18-27%);
- one query: p50 16.4 ms plain, 14.1 ms packed; 30 reranker pairs: p50 530 ms, 428 ms;
- outputs: embedding cosine to the plain bf16 model >= 0.99997, reranker logits within 0.004.

Weight-only: the packed layout cannot be trained or saved, so this is applied to the app's
inference copies only (``Tuning.cpu_prepack``), never to a model being trained.
"""

from __future__ import annotations

import torch
from torch import nn

from rag.internals import (
    bert_ffn_gelu,
    drop_bert_ffn_activation,
    onednn_bf16_supported,
    onednn_linear,
    onednn_pack_weight,
)
from rag.quantize import replace_linears

# Rows (tokens) the packed layout is chosen for: a typical encode batch (32 x ~150 tokens).
# Measured: queries (one row of ~16 tokens) are also faster with it than with plain addmm.
PACK_ROWS_HINT = 4096


class PackedLinear(nn.Module):
    """``y = act(x @ W.T + b)`` with ``W`` pre-packed for oneDNN; ``act`` is "none" or "gelu" (erf)."""

    def __init__(self, linear: nn.Linear, activation: str = "none") -> None:
        super().__init__()
        if activation not in ("none", "gelu"):
            raise ValueError(f"unsupported fused activation {activation!r}; use 'none' or 'gelu'")
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        self.activation = activation
        weight = linear.weight.detach()
        self.dtype = weight.dtype
        # Plain attributes, not buffers: a later ``model.to(dtype)`` would convert the blocked
        # layout element by element into a layout oneDNN does not expect for the new dtype.
        self.packed_weight = onednn_pack_weight(weight, PACK_ROWS_HINT)
        self.bias = None if linear.bias is None else linear.bias.detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != self.dtype:  # same contract as nn.Linear: inputs in the weight's dtype
            x = x.to(self.dtype)
        return onednn_linear(x, self.packed_weight, self.bias, self.activation)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


def prepack_available(device: str, bf16: bool) -> bool:
    """Only where it was measured to pay: CPU, bf16 weights, a torch built with oneDNN bf16."""
    if device != "cpu" or not bf16 or not torch.backends.mkldnn.is_available():
        return False
    return onednn_bf16_supported()


def prepack_linears(model: nn.Module) -> int:
    """Replace every ``nn.Linear`` under ``model`` by a :class:`PackedLinear`; returns how many.

    A BERT-style feed-forward block (a module with ``dense`` and an exact-GELU
    ``intermediate_act_fn``, e.g. ``BertIntermediate``) gets the GELU fused into its product, and
    its ``intermediate_act_fn`` becomes the identity. Other activations stay where they are.

    >>> ffn = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))
    >>> x = torch.randn(3, 4)
    >>> before = ffn(x)
    >>> prepack_linears(ffn), type(ffn[0]).__name__
    (2, 'PackedLinear')
    >>> bool(torch.allclose(ffn(x), before, atol=1e-5))
    True
    """

    def build(parent: nn.Module, name: str, linear: nn.Linear) -> nn.Module:
        if bert_ffn_gelu(parent, name):
            drop_bert_ffn_activation(parent)
            return PackedLinear(linear, "gelu")
        return PackedLinear(linear)

    return replace_linears(model, build)


def prepack_if_enabled(model: nn.Module, setting: str, device: str, bf16: bool) -> bool:
    """Pack ``model``'s linears when ``setting`` (``Tuning.cpu_prepack``) is "auto" and
    :func:`prepack_available`; returns whether it did. The embedder's and reranker's one call."""
    if setting != "auto" or not prepack_available(device, bf16):
        return False
    prepack_linears(model)
    return True
