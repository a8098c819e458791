"""rag.internals against the installed libraries: each test fails, naming the library, the
internal and what to do, when an upgrade has moved or changed an internal the app relies on."""

from __future__ import annotations

import ctypes
import inspect
import platform
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from rag import internals


def moved(library: str, internal: str, what: str) -> str:
    return (
        f"{library}: {internal} {what}. rag/internals.py relies on it (see the function's comment): "
        f"adapt that function to the installed {library}, or pin {library} to the version named there."
    )


def params(fn: Any) -> list[str]:
    return [p for p in inspect.signature(fn).parameters if p != "self"]


# --- transformers ---------------------------------------------------------------------------


def test_transformers_dynamic_layer_is_as_the_growing_cache_subclasses_it() -> None:
    layer_class = internals.dynamic_layer_class()
    for name, expected in (
        ("lazy_initialization", ["key_states", "value_states"]),
        ("update", ["key_states", "value_states"]),
        ("crop", ["tokens_to_remove"]),
    ):
        method = getattr(layer_class, name, None)
        assert method is not None, moved("transformers", f"cache_utils.DynamicLayer.{name}", "is gone")
        assert params(method)[: len(expected)] == expected, moved(
            "transformers", f"DynamicLayer.{name}", f"now takes {params(method)}, not {expected}"
        )
    layer = layer_class()
    layer.lazy_initialization(torch.zeros(1, 1, 2, 4), torch.zeros(1, 1, 2, 4))
    for attr in ("is_initialized", "keys", "values"):
        assert hasattr(layer, attr), moved("transformers", f"DynamicLayer.{attr}", "is no longer set")


def test_transformers_dynamic_cache_replicates_the_layer_class_it_is_given() -> None:
    base = internals.dynamic_layer_class()

    class Marked(base):  # type: ignore[misc, valid-type]
        pass

    cache = internals.cache_of_layers(Marked)
    cache.update(torch.zeros(1, 1, 3, 4), torch.zeros(1, 1, 3, 4), 0)
    assert [type(layer) for layer in cache.layers] == [Marked], moved(
        "transformers", "DynamicCache.layer_class_to_replicate", "no longer decides the class of new layers"
    )
    assert cache.get_seq_length() == 3


def test_transformers_models_keep_their_quantizer_where_save_pretrained_looks() -> None:
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedModel

    source = inspect.getsource(PreTrainedModel.save_pretrained)
    assert "hf_quantizer" in source, moved(
        "transformers", "PreTrainedModel.hf_quantizer", "is no longer what save_pretrained checks"
    )
    config = LlamaConfig(vocab_size=8, hidden_size=8, intermediate_size=8, num_hidden_layers=1, num_attention_heads=1)
    model = LlamaForCausalLM(config)
    model.hf_quantizer = object()  # type: ignore[assignment]
    model.config.quantization_config = {"quant_method": "gguf"}
    internals.forget_gguf_quantizer(model)
    assert model.hf_quantizer is None and not hasattr(model.config, "quantization_config")


def test_transformers_bert_feed_forward_keeps_dense_and_an_exact_gelu() -> None:
    from transformers import BertConfig
    from transformers.activations import GELUActivation
    from transformers.models.bert.modeling_bert import BertIntermediate

    assert internals.is_exact_gelu(GELUActivation()), moved(
        "transformers", "activations.GELUActivation.act", "no longer holds torch.nn.functional.gelu"
    )
    block = BertIntermediate(BertConfig(hidden_size=8, intermediate_size=16, hidden_act="gelu"))
    assert isinstance(getattr(block, "dense", None), torch.nn.Linear), moved(
        "transformers", "BertIntermediate.dense", "is gone"
    )
    assert internals.bert_ffn_gelu(block, "dense"), moved(
        "transformers", "BertIntermediate.intermediate_act_fn", "is gone or not the exact GELU"
    )
    x = torch.randn(2, 8)
    expected = block(x)
    internals.drop_bert_ffn_activation(block)
    torch.testing.assert_close(block(x), block.dense(x))  # forward is act(dense(x)): now dense(x) alone
    assert not torch.equal(expected, block(x))


# --- torch ----------------------------------------------------------------------------------


def test_torch_int8_weight_only_matmul() -> None:
    assert internals.has_int8_rows_matmul(), moved(
        "torch", "torch._weight_int8pack_mm", "is gone (int8 decoding would silently switch off)"
    )
    torch.manual_seed(0)
    x = torch.randn(2, 32).to(torch.bfloat16)
    q = torch.randint(-127, 128, (8, 32), dtype=torch.int8)
    scales = (torch.rand(8) / 100).to(torch.bfloat16)
    expected = x.float() @ (q.float() * scales.float()[:, None]).T
    torch.testing.assert_close(internals.int8_rows_matmul(x, q, scales).float(), expected, atol=0.05, rtol=0.02)


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")
def test_torch_onednn_packed_linear_ops() -> None:
    for name in ("_reorder_linear_weight", "_linear_pointwise", "_is_mkldnn_bf16_supported"):
        assert hasattr(torch.ops.mkldnn, name), moved("torch", f"torch.ops.mkldnn.{name}", "is gone")
    internals.onednn_bf16_supported()  # answers either way, without raising
    torch.manual_seed(0)
    linear = torch.nn.Linear(16, 24)
    x = torch.randn(3, 16)
    packed = internals.onednn_pack_weight(linear.weight.detach(), 64)
    for activation, expected in (("none", linear(x)), ("gelu", torch.nn.functional.gelu(linear(x)))):
        out = internals.onednn_linear(x, packed, linear.bias.detach(), activation)
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


# --- bm25s ----------------------------------------------------------------------------------


def test_bm25s_builds_its_matrix_with_the_replaceable_csc_builder() -> None:
    import bm25s
    from bm25s.tokenization import Tokenized

    builder = getattr(bm25s.BM25, "_np_csc", None)
    assert builder is not None, moved("bm25s", "BM25._np_csc", "is gone")
    assert params(builder) == ["data", "rows", "cols", "shape"], moved(
        "bm25s", "BM25._np_csc", f"now takes {params(builder)}"
    )
    from rag.sparse import csc_by_column

    calls: list[tuple[int, int]] = []

    def counting(**kwargs: Any) -> Any:
        calls.append(kwargs["shape"])
        return csc_by_column(**kwargs)

    bm25 = bm25s.BM25(method="lucene")
    internals.use_csc_builder(bm25, counting)
    bm25.index(Tokenized(ids=[[0, 1], [1, 2]], vocab={"a": 0, "b": 1, "c": 2}), show_progress=False)
    assert calls == [(2, 3)], moved("bm25s", "BM25._np_csc", "is no longer what BM25.index builds with")


# --- chromadb -------------------------------------------------------------------------------


def test_chromadb_shared_system_cache(tmp_path: Path) -> None:
    import chromadb
    from chromadb.api.shared_system_client import SharedSystemClient
    from chromadb.config import Settings as ChromaSettings

    for name in ("_identifier_to_system", "_identifier_to_refcount"):
        assert isinstance(getattr(SharedSystemClient, name, None), dict), moved(
            "chromadb", f"SharedSystemClient.{name}", "is gone"
        )
    client = chromadb.PersistentClient(path=str(tmp_path), settings=ChromaSettings(anonymized_telemetry=False))
    identifier = getattr(client, "_identifier", None)
    assert identifier in SharedSystemClient._identifier_to_system, moved(
        "chromadb", "client._identifier", "no longer keys the shared system cache"
    )
    internals.forget_shared_chroma_system(client, str(tmp_path))
    assert identifier not in SharedSystemClient._identifier_to_system


# --- sentence-transformers ------------------------------------------------------------------


def test_sentence_transformers_first_module_takes_text_processing_kwargs() -> None:
    from sentence_transformers.cross_encoder import CrossEncoder

    from rag.config import REPO_ROOT

    folder = REPO_ROOT / "models" / "reranker"
    if not (folder / "model.safetensors").is_file():
        pytest.skip("the shipped reranker is not in models/reranker")
    model = CrossEncoder(str(folder), device="cpu")
    assert internals.pad_text_to_multiple(model, 16) == 16, moved(
        "sentence-transformers", "Transformer.processing_kwargs", "is gone from the first module"
    )
    features = model[0].preprocess([("a short question", "and a passage of a few more words")])
    assert features["input_ids"].shape[-1] % 16 == 0, moved(
        "sentence-transformers", "Transformer.processing_kwargs['text']", "no longer reaches the tokenizer"
    )


# --- peft -----------------------------------------------------------------------------------


def test_peft_still_warns_of_the_rename_the_app_silences() -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM

    def load() -> list[str]:
        config = Qwen2Config(vocab_size=16, hidden_size=8, intermediate_size=8, num_hidden_layers=1,
                             num_attention_heads=1, num_key_value_heads=1)  # fmt: skip
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            with internals.peft_rename_warning_silenced():
                get_peft_model(Qwen2ForCausalLM(config), LoraConfig(r=2, target_modules=["q_proj"]))
            get_peft_model(Qwen2ForCausalLM(config), LoraConfig(r=2, target_modules=["q_proj"]))
        return [str(w.message) for w in seen if "is_gradient_checkpointing" in str(w.message)]

    assert len(load()) == 1, (
        "peft: the is_gradient_checkpointing rename warning is no longer raised (or no longer "
        "silenced). Remove rag.internals.peft_rename_warning_silenced and its callers if peft "
        "stopped calling the old name; else adapt its filter to the new message."
    )


# --- glibc ----------------------------------------------------------------------------------


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_glibc_has_malloc_trim() -> None:
    assert hasattr(ctypes.CDLL("libc.so.6"), "malloc_trim"), moved("glibc", "malloc_trim", "is gone from libc.so.6")
    internals.malloc_trim()
