"""Every place the app relies on a library's internals: a private name, an internal class it
subclasses, an attribute no documentation promises. One small function each, named for what it
does, with the library version it was checked against.

An upgrade may move any of them without notice. ``tests/unit/test_internals.py`` checks each
one against the installed library and fails with the library, the internal and what to do, so
that a move shows up there rather than as a slower decode, a bigger index or a crash at load.
Whoever upgrades one of these libraries: run that test, then re-check the figure the function's
comment names before raising the version here.
"""

from __future__ import annotations

import contextlib
import ctypes
import warnings
from collections.abc import Callable, Iterator
from typing import Any

# --- transformers 5.23.0 --------------------------------------------------------------------


def dynamic_layer_class() -> type:
    """``transformers.cache_utils.DynamicLayer``, the per-layer store of a ``DynamicCache``.
    :mod:`rag.kv_cache` subclasses it (overriding ``lazy_initialization``, ``update`` and
    ``crop``, and keeping ``keys``, ``values`` and ``is_initialized`` as it does) so that a
    decode step appends in place instead of concatenating the whole cache (5-12% faster
    decoding, docs/performance.md)."""
    from transformers.cache_utils import DynamicLayer

    return DynamicLayer


def cache_of_layers(layer_class: type) -> Any:
    """A ``DynamicCache`` whose layers, created as ``update`` first reaches them, are
    ``layer_class``: its ``__init__`` takes no layer class, so ``layer_class_to_replicate``
    (which ``Cache.update`` instantiates) is replaced after construction."""
    from transformers import DynamicCache

    cache = DynamicCache()
    cache.layer_class_to_replicate = layer_class
    return cache


def forget_gguf_quantizer(model: Any) -> None:
    """Make a model that transformers de-quantised from a GGUF file savable as plain weights:
    the weights are ordinary tensors, but the model keeps its ``hf_quantizer`` and its config's
    ``quantization_config``, and ``save_pretrained`` refuses a quantizer that is not
    serialisable."""
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def is_exact_gelu(module: Any) -> bool:
    """Whether ``module`` computes the exact (erf) GELU: a bare ``nn.GELU()``, or transformers'
    ``GELUActivation``, which keeps the torch function it calls in ``act``."""
    import torch

    if isinstance(module, torch.nn.GELU):
        return module.approximate == "none"
    return getattr(module, "act", None) is torch.nn.functional.gelu


def bert_ffn_gelu(parent: Any, child_name: str) -> bool:
    """Whether ``parent.<child_name>`` is the product of a BERT feed-forward block
    (``BertIntermediate``: ``act(dense(x))``, the activation in ``intermediate_act_fn``) whose
    activation is the exact GELU, so that the GELU can be fused into that product."""
    return child_name == "dense" and is_exact_gelu(getattr(parent, "intermediate_act_fn", None))


def drop_bert_ffn_activation(parent: Any) -> None:
    """Make a BERT feed-forward block's activation the identity (it was fused into ``dense``)."""
    import torch

    parent.intermediate_act_fn = torch.nn.Identity()


# --- torch 2.13.0 ---------------------------------------------------------------------------


def has_int8_rows_matmul() -> bool:
    """Whether this torch has ``torch._weight_int8pack_mm`` (CPU builds since 2.3)."""
    import torch

    return hasattr(torch, "_weight_int8pack_mm")


def int8_rows_matmul(x: Any, qweight: Any, scales: Any) -> Any:
    """``x @ (qweight * scales[:, None]).T`` for bf16 ``x`` (rows, in), int8 ``qweight``
    (out, in) and bf16 per-row ``scales`` (out,): ``torch._weight_int8pack_mm``, the kernel of
    int8 weight-only decoding (23-28 against 14-16 tokens/s in bf16, rag/quantize.py)."""
    import torch

    return torch._weight_int8pack_mm(x, qweight, scales)


def onednn_bf16_supported() -> bool:
    """Whether oneDNN runs bf16 on this CPU: ``torch.ops.mkldnn._is_mkldnn_bf16_supported``."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def onednn_pack_weight(weight: Any, rows_hint: int) -> Any:
    """A linear weight in oneDNN's blocked layout for inputs of about ``rows_hint`` rows
    (``torch.ops.mkldnn._reorder_linear_weight``, what Inductor's freezing does)."""
    import torch

    return torch.ops.mkldnn._reorder_linear_weight(weight, rows_hint)


def onednn_linear(x: Any, packed_weight: Any, bias: Any, activation: str) -> Any:
    """``activation(x @ W.T + bias)`` with ``W`` packed by :func:`onednn_pack_weight`
    (``torch.ops.mkldnn._linear_pointwise``); ``activation`` is "none" or "gelu", and the GELU
    algorithm "none" is the exact (erf) one."""
    import torch

    return torch.ops.mkldnn._linear_pointwise(x, packed_weight, bias, activation, [], "none")


# --- bm25s 0.3.16 ---------------------------------------------------------------------------

CscBuilder = Callable[..., tuple[Any, Any, Any]]


def use_csc_builder(bm25: Any, builder: CscBuilder) -> None:
    """Have ``bm25`` (a ``bm25s.BM25``) build its score matrix with ``builder(data=, rows=,
    cols=, shape=)`` -> (data, indices, indptr) instead of its ``_np_csc`` (rag.sparse's uses
    ~45 MiB less at 100k chunks)."""
    bm25._np_csc = builder


# --- chromadb 1.5.9 -------------------------------------------------------------------------


def forget_shared_chroma_system(client: Any, default_identifier: str) -> None:
    """Drop an embedded client's system from the process-wide cache that chromadb keeps per
    path (``SharedSystemClient._identifier_to_system`` and ``_identifier_to_refcount``, keyed by
    the client's ``_identifier``), so that the next client opened on the path reads the files
    anew and sees what another process wrote."""
    from chromadb.api.shared_system_client import SharedSystemClient

    identifier = getattr(client, "_identifier", default_identifier)
    SharedSystemClient._identifier_to_system.pop(identifier, None)
    SharedSystemClient._identifier_to_refcount.pop(identifier, None)


# --- sentence-transformers 6.2.0 ------------------------------------------------------------


def pad_text_to_multiple(model: Any, multiple: int) -> int | None:
    """Have a sentence-transformers model (bi- or cross-encoder) pad each batch's text to a
    multiple of ``multiple`` tokens, unless its settings already name one: its first module's
    ``processing_kwargs["text"]`` are the tokenizer arguments of every call. Returns the
    multiple in force, or None when the first module takes no such settings."""
    first: Any = model[0] if len(model) else None
    processing = getattr(first, "processing_kwargs", None)
    if not isinstance(processing, dict):
        return None
    text_kwargs = dict(processing.get("text", {}))
    text_kwargs.setdefault("pad_to_multiple_of", multiple)
    first.processing_kwargs = {**processing, "text": text_kwargs}
    return int(text_kwargs["pad_to_multiple_of"] or 1)


# --- peft 0.21.2 ----------------------------------------------------------------------------


@contextlib.contextmanager
def peft_rename_warning_silenced() -> Iterator[None]:
    """peft 0.21 calls transformers 5's ``is_gradient_checkpointing``, which warns of its own
    rename on every adapter load: not the user's to act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


# --- glibc 2.36 -----------------------------------------------------------------------------


def malloc_trim() -> None:
    """glibc's ``malloc_trim(0)`` (a GNU extension): give the heap's free pages back to the OS;
    nothing where the C library has no such function."""
    with contextlib.suppress(OSError, AttributeError):  # AttributeError: a libc without it
        ctypes.CDLL("libc.so.6").malloc_trim(0)
