"""rag.decode.CompiledDecodeStep: the compiled decode loop (static KV cache, torch.compile) must
write token for token what the eager loop and ``model.generate()`` write, and a compile that
fails must leave the eager loop in place."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from rag.decode import CompiledDecodeStep, next_tokens, static_cache_length


@pytest.fixture(scope="module")
def tiny_llama() -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
    )  # fmt: skip
    return LlamaForCausalLM(config).eval()


def _tokens(model: Any, prompt: torch.Tensor, n: int, step: Any = None) -> list[int]:
    from transformers import LogitsProcessorList

    return list(next_tokens(model, prompt, LogitsProcessorList(), n, set(), False, step=step))


@pytest.mark.slow
def test_compiled_steps_decode_what_generate_decodes(tiny_llama: Any, tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))  # a cold compile, nothing left behind
    compiled = CompiledDecodeStep(tiny_llama, tmp_path / "inductor")
    assert compiled.current() is None  # not compiled yet: the eager loop
    assert compiled.warm_up(), compiled.error
    assert compiled.current() is not None and compiled.seconds > 0
    # prompts whose caches fall in different buckets (256 and 512 tokens): one dynamic graph serves both
    for length in (40, 300):
        prompt = (torch.arange(length).reshape(1, length) * 31 + length) % 97
        with torch.inference_mode():
            mask = torch.ones_like(prompt)
            out = tiny_llama.generate(prompt, attention_mask=mask, max_new_tokens=20, do_sample=False)
        expected = out[0, length:].tolist()
        assert static_cache_length(length + 20) == (256 if length == 40 else 512)
        assert _tokens(tiny_llama, prompt, 20) == expected
        assert _tokens(tiny_llama, prompt, 20, step=compiled.current()) == expected


@pytest.mark.slow
def test_background_compiling_switches_once_ready(tiny_llama: Any, tmp_path: Any, monkeypatch: Any) -> None:
    """RAG_LLM_COMPILE=background: a helper thread compiles (and then ends) while the eager loop
    serves; afterwards ``current()`` hands out the compiled step."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    compiled = CompiledDecodeStep(tiny_llama, tmp_path / "inductor")
    thread = compiled.warm_up_in_background()
    prompt = torch.arange(30).reshape(1, 30) % 97
    eager = _tokens(tiny_llama, prompt, 8, step=compiled.current())  # served while it may still compile
    thread.join(timeout=600)
    assert not thread.is_alive() and compiled.ready.is_set(), compiled.error
    assert _tokens(tiny_llama, prompt, 8, step=compiled.current()) == eager


def test_a_failed_compile_keeps_the_eager_loop(tiny_llama: Any, tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))

    def no_compiler(**kwargs: Any) -> Any:  # what a machine without a C++ compiler raises, in short
        raise RuntimeError("InductorError: no working C++ compiler found")

    compiled = CompiledDecodeStep(tiny_llama, tmp_path / "inductor")
    compiled.step = no_compiler  # the first compiled call is where Inductor compiles
    assert not compiled.warm_up()
    assert compiled.current() is None and "C++ compiler" in compiled.error
    prompt = torch.arange(12).reshape(1, 12)
    assert len(_tokens(tiny_llama, prompt, 5, step=compiled.current())) == 5  # eager decoding goes on


def test_the_admin_page_says_how_decoding_runs() -> None:
    import threading
    from types import SimpleNamespace

    from rag.services import decoding_label

    ready, waiting = threading.Event(), threading.Event()
    ready.set()
    done = SimpleNamespace(ready=ready, seconds=37.2, error="")
    busy = SimpleNamespace(ready=waiting, seconds=0.0, error="")
    failed = SimpleNamespace(ready=waiting, seconds=0.0, error="InductorError: no C++ compiler")
    assert decoding_label(SimpleNamespace(compiled=None, int8_decode=True)) == "eager, int8 weights"
    label = decoding_label(SimpleNamespace(compiled=done, int8_decode=True))
    assert label == "compiled with torch.compile in 37 s, int8 weights"
    assert decoding_label(SimpleNamespace(compiled=busy)) == "eager, compiling in the background"
    assert "compiling failed: InductorError" in decoding_label(SimpleNamespace(compiled=failed))
    assert decoding_label(SimpleNamespace(name="openai")) == ""  # a remote generator has no decode loop here
