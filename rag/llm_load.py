"""Loading the local generator: weights (a GGUF file converted once and cached), the LoRA
adapter merged in, the dtype it computes in, and the tokens that end an answer.

The packaged default is a GGUF file; transformers de-quantises it on load (~20-40 s), so the
converted model is saved once under the model cache and reloaded from there (<1 s) afterwards.
The LoRA adapter of ``RAG_LORA_ADAPTER`` (by default the one shipped for the packaged
generator, models/lora-<name>, see :mod:`rag.train.lora`) is merged into the weights on load.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.internals import forget_gguf_quantizer, peft_rename_warning_silenced
from rag.models import offline_by_default, pick_device, resolve_llm, resolve_lora_adapter, use_bf16

log = logging.getLogger(__name__)

# End-of-text tokens of the chat templates we ship: a GGUF file may name either one as the
# tokenizer's eos (Qwen2.5's names <|im_end|> or <|endoftext|> depending on the reader), and the
# model may end its turn with both, so generation stops at any of them.
END_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|end_of_text|>", "<|eot_id|>")


def stop_ids(tokenizer: Any, generation_eos: int | list[int] | None) -> set[int]:
    """The token ids that end an answer: the generation config's, the tokenizer's eos, and every
    known end-of-text token the vocabulary has as a special token."""
    eos = generation_eos
    ids = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    special = set(getattr(tokenizer, "all_special_tokens", ())) | set(getattr(tokenizer, "added_tokens_encoder", {}))
    for name in END_TOKENS:
        if name in special:
            ids.add(int(tokenizer.convert_tokens_to_ids(name)))
    return ids


def _gguf_cache_dir(cache_root: Path, directory: str, gguf_file: str, dtype: str) -> Path:
    src = Path(directory) / gguf_file
    st = src.stat()
    key = hashlib.sha256(f"{src.resolve()}:{st.st_size}:{int(st.st_mtime)}".encode()).hexdigest()[:12]
    return cache_root / f"{Path(gguf_file).stem}-{key}-{dtype}"


def load_causal_lm(settings: Settings) -> tuple[Any, Any, str]:
    """-> (model, tokenizer, where it was loaded from). A GGUF file is de-quantised once and cached
    as safetensors in the dtype this machine computes in (bf16 where the CPU has native bf16 or on
    a GPU: half the disk and load time; else fp32). The model's ``generate()`` stops at every end
    token, as the app's own decode loop does (:func:`stop_ids`)."""
    model, tok, where = _load_weights(settings)
    model.generation_config.eos_token_id = sorted(stop_ids(tok, model.generation_config.eos_token_id))
    return model, tok, where


def _load_weights(settings: Settings) -> tuple[Any, Any, str]:
    offline_by_default()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory, gguf_file = resolve_llm(settings.llm_model, settings.model_cache_dir)
    if gguf_file is None:
        tok = AutoTokenizer.from_pretrained(directory)
        return AutoModelForCausalLM.from_pretrained(directory), tok, directory
    bf16 = use_bf16(settings, pick_device(settings.device))
    cached = _gguf_cache_dir(settings.model_cache_dir, directory, gguf_file, "bf16" if bf16 else "fp32")
    if (cached / "config.json").is_file():
        model = AutoModelForCausalLM.from_pretrained(cached, dtype="auto")
        return model, AutoTokenizer.from_pretrained(cached), str(cached)
    log.info("converting %s once; cached at %s", gguf_file, cached)
    tok = AutoTokenizer.from_pretrained(directory, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=gguf_file)
    forget_gguf_quantizer(model)  # the de-quantised weights are plain tensors: save them as such
    if bf16:
        model = model.to(dtype=torch.bfloat16)  # type: ignore[call-arg]
    tmp = cached.with_name(cached.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    try:
        os.replace(tmp, cached)  # atomic: a crash never leaves a half-written cache
    except OSError:  # another process won the race
        shutil.rmtree(tmp, ignore_errors=True)
    return model, tok, str(cached)


def merge_adapter(model: Any, adapter: str) -> Any:
    """Apply a peft LoRA adapter and fold it into the base weights: the merged model generates
    exactly as fast as the base one (no extra matmuls per layer)."""
    from peft import PeftModel

    try:
        with peft_rename_warning_silenced():
            peft_model = PeftModel.from_pretrained(model, adapter)
    except Exception as e:  # wrong base model, missing files, unreachable hub id
        raise RuntimeError(
            f"Cannot apply the LoRA adapter {adapter} to the generator ({type(e).__name__}: {e}). "
            "Set RAG_LORA_ADAPTER to an adapter trained for RAG_LLM_MODEL, or to 'none' for the base model."
        ) from e
    return peft_model.merge_and_unload()


@dataclass
class LoadedGenerator:
    """A causal LM ready to answer: adapter merged, on its device, in the dtype it computes in."""

    model: Any
    tokenizer: Any
    loaded_from: str  # the folder the weights came from (the converted GGUF cache for a GGUF file)
    adapter: str | None  # the LoRA adapter merged in (a folder or HF id); None for the base model
    device: str
    bf16: bool


def load_generator(settings: Settings) -> LoadedGenerator:
    """The generator of ``RAG_LLM_MODEL`` with ``RAG_LORA_ADAPTER`` merged, for inference (eval mode)."""
    import torch

    device = pick_device(settings.device)
    bf16 = use_bf16(settings, device)
    model, tokenizer, loaded_from = load_causal_lm(settings)
    adapter = resolve_lora_adapter(settings.lora_adapter, settings.llm_model)
    if adapter is not None:
        model = merge_adapter(model, adapter)  # merged in the cached dtype, before the cast below
    # bf16 *weights*, not autocast: measured here over a ~1,000-token prompt, autocast made
    # decoding 2.7x slower than fp32 (5.8 vs 15.5 tokens/s; it re-casts every weight at every
    # step), while bf16 weights prefill 3x faster than fp32 (0.7 vs 2.1 s) and decode at
    # about the fp32 speed, in half the memory.
    model = model.to(device=device, dtype=torch.bfloat16 if bf16 else torch.float32).eval()
    return LoadedGenerator(model, tokenizer, loaded_from, adapter, device, bf16)
