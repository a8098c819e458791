"""The answer writer: a local transformers causal LM, streamed token by token.

The packaged default is a GGUF file; transformers de-quantises it on load (~20-40 s),
so the converted model is saved once under the model cache and reloaded from there
(<1 s) afterwards.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.models import autocast, offline_by_default, pick_device, resolve_llm, use_bf16

log = logging.getLogger(__name__)


def _gguf_cache_dir(cache_root: Path, directory: str, gguf_file: str) -> Path:
    src = Path(directory) / gguf_file
    st = src.stat()
    key = hashlib.sha256(f"{src.resolve()}:{st.st_size}:{int(st.st_mtime)}".encode()).hexdigest()[:12]
    return cache_root / f"{Path(gguf_file).stem}-{key}"


def load_causal_lm(settings: Settings) -> tuple[Any, Any, str]:
    """-> (model, tokenizer, where it was loaded from). Converts a GGUF once and caches it."""
    offline_by_default()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory, gguf_file = resolve_llm(settings.llm_model)
    if gguf_file is None:
        tok = AutoTokenizer.from_pretrained(directory)
        return AutoModelForCausalLM.from_pretrained(directory), tok, directory
    cached = _gguf_cache_dir(settings.model_cache_dir, directory, gguf_file)
    if (cached / "config.json").is_file():
        return AutoModelForCausalLM.from_pretrained(cached), AutoTokenizer.from_pretrained(cached), str(cached)
    log.info("converting %s once; cached at %s", gguf_file, cached)
    tok = AutoTokenizer.from_pretrained(directory, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=gguf_file)
    # The de-quantised weights are plain tensors; drop the GGUF marker so they can be saved.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = cached.with_name(cached.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    try:
        os.replace(tmp, cached)  # atomic: a crash never leaves a half-written cache
    except OSError:  # another process won the race
        shutil.rmtree(tmp, ignore_errors=True)
    return model, tok, str(cached)


class TransformersGenerator:
    """Implements :class:`rag.interfaces.Generator` with an in-process model."""

    def __init__(self, settings: Settings) -> None:
        import torch

        self.settings = settings
        self.name = settings.llm_model
        self.device = pick_device(settings.device)
        self.bf16 = use_bf16(settings, self.device)
        model, self.tokenizer, self.loaded_from = load_causal_lm(settings)
        self.model = model.to(self.device).eval()
        self.torch = torch
        # One generation at a time: parallel decodes on 2 cores only slow each other down.
        self._lock = threading.Lock()

    def _inputs(self, messages: list[dict[str, str]]) -> Any:
        enc = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        return {k: v.to(self.device) for k, v in enc.items()}

    def count_prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        return int(self._inputs(messages)["input_ids"].shape[1])

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        inputs = self._inputs(messages)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=300)
        s = self.settings
        kwargs: dict[str, Any] = dict(
            **inputs,
            streamer=streamer,
            max_new_tokens=s.max_new_tokens,
            repetition_penalty=s.repetition_penalty,
            pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        )
        if s.temperature > 0:
            kwargs.update(do_sample=True, temperature=s.temperature, top_p=0.9)
        else:
            kwargs.update(do_sample=False)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with self.torch.inference_mode(), autocast(self.device, self.bf16):
                    self.model.generate(**kwargs)
            except BaseException as e:  # surface it in the caller's thread
                errors.append(e)
                streamer.end()

        with self._lock:
            t = threading.Thread(target=run, daemon=True)
            t.start()
            yield from streamer
            t.join()
        if errors:
            raise RuntimeError(f"generation failed: {errors[0]}") from errors[0]
