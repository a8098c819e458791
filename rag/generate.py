"""The answer writer: a local transformers causal LM, streamed token by token in the caller's
thread. Its parts: loading (:mod:`rag.llm_load`), the decode loop and its compiled variant
(:mod:`rag.decode`), the KV cache and the cached prompt start (:mod:`rag.kv_cache`), the
abstention gate (:mod:`rag.abstain`). ``RAG_LLM_BACKEND=openai`` uses
:class:`rag.llm_openai.OpenAICompatibleGenerator` instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from rag.abstain import abstention_starts
from rag.config import Settings
from rag.decode import CompiledDecodeStep, logits_processors, next_tokens
from rag.kv_cache import PromptPrefix, common_prefix_len, full_attention_only, prefix_length, prompt_prefix
from rag.llm_load import load_generator, stop_ids
from rag.prompting import abstain_message


@dataclass
class GenerationStats:
    """What the last :meth:`TransformersGenerator.stream` did, timed in its decode loop.

    ``prefill_s``: from the call to the first new token (prompt forward pass + first step);
    ``decode_s``: from the first to the last new token, so decode speed is
    ``(new_tokens - 1) / decode_s``.
    """

    prompt_tokens: int = 0
    new_tokens: int = 0
    reused_tokens: int = 0  # prompt tokens whose keys and values came from the cached prefix
    prefill_s: float = 0.0
    decode_s: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        return (self.new_tokens - 1) / self.decode_s if self.new_tokens > 1 and self.decode_s > 0 else 0.0


class _Pieces:
    """Collects the text a TextStreamer finalises (whole words, as TextIteratorStreamer emits)."""

    def __init__(self, tokenizer: Any) -> None:
        from transformers import TextStreamer

        pieces: list[str] = []

        class Collect(TextStreamer):
            def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
                if text:
                    pieces.append(text)

        self.pieces = pieces
        self.streamer = Collect(tokenizer, skip_prompt=True, skip_special_tokens=True)

    def drain(self) -> list[str]:
        out = self.pieces[:]
        self.pieces.clear()
        return out


class TransformersGenerator:
    """Implements :class:`rag.interfaces.Generator` with an in-process model.

    ``adapter`` is the LoRA adapter merged into the model (a folder or HF id), None for the base model.
    """

    compiled: CompiledDecodeStep | None  # the compiled decode step (RAG_LLM_COMPILE), None: eager

    def __init__(self, settings: Settings) -> None:
        loaded = load_generator(settings)
        self.loaded_from, self.adapter, self.bf16 = loaded.loaded_from, loaded.adapter, loaded.bf16
        self._setup(settings, loaded.model, loaded.tokenizer, loaded.device)
        if settings.tuning.llm_int8_decode == "on" or (
            settings.tuning.llm_int8_decode == "auto" and self.device == "cpu"
        ):
            from rag.quantize import quantize_for_decode

            self.int8_decode = quantize_for_decode(self.model) > 0
        if settings.llm_compile != "off":
            self.compiled = CompiledDecodeStep(self.model, settings.model_cache_dir / "inductor")
            if settings.llm_compile == "on":
                self.compiled.warm_up()
            else:
                self.compiled.warm_up_in_background()

    @classmethod
    def around(cls, model: Any, tokenizer: Any, settings: Settings) -> TransformersGenerator:
        """A generator over a model loaded elsewhere (:func:`rag.llm_load.load_causal_lm`), used
        as it is: no adapter merged, no cast, no int8 copies, no compiling. The LoRA trainer
        checks its adapter through it, so that its figures come from the app's own decoding."""
        import torch

        self = cls.__new__(cls)
        weight = next(model.parameters())
        self.loaded_from, self.adapter = str(getattr(model, "name_or_path", "")), None
        self.bf16 = weight.dtype == torch.bfloat16
        self._setup(settings, model, tokenizer, weight.device.type)
        return self

    def _setup(self, settings: Settings, model: Any, tokenizer: Any, device: str) -> None:
        self.settings = settings
        self.name = settings.llm_model
        self.model, self.tokenizer, self.device = model, tokenizer, device
        self.int8_decode = False
        self.compiled = None
        # One generation at a time: parallel decodes on 2 cores only slow each other down.
        self._lock = threading.Lock()
        self.last_stats = GenerationStats()
        self._abstain_starts = abstention_starts(tokenizer, abstain_message())
        self._prefix: PromptPrefix | None = None  # set by prepare() or the first question

    def _inputs(self, messages: list[dict[str, str]]) -> Any:
        enc = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        return {k: v.to(self.device) for k, v in enc.items()}

    def _reusable_prefix(self, messages: list[dict[str, str]], prompt: list[int]) -> list[tuple[Any, Any]]:
        """Keys and values for the start ``prompt`` shares with every prompt of these messages but
        the last one's content (the chat template and the system prompt); computed here when
        there is none yet or the system prompt changed (call with the model lock held)."""
        if not self.settings.tuning.llm_prefix_cache or not full_attention_only(self.model.config):
            return []
        if self._prefix is None or common_prefix_len(self._prefix.ids, prompt) < len(self._prefix.ids):
            # The fixed start: what the prompt has in common with the same messages ending in any
            # other text (two different one-letter stand-ins find where the content begins).
            last = messages[-1]
            a, b = (self._inputs([*messages[:-1], {**last, "content": c}])["input_ids"][0].tolist() for c in "ab")
            fixed = prompt[: common_prefix_len(prompt, a[: common_prefix_len(a, b)])]
            if not fixed:
                return []
            self._prefix = prompt_prefix(self.model, fixed)
        return self._prefix.reusable(prompt)

    def prepare(self, messages: list[dict[str, str]]) -> None:
        """Prefill the start that prompts like ``messages`` share (chat template and system
        prompt) now, at load, instead of in the first question's time to first token."""
        prompt = self._inputs(messages)["input_ids"][0].tolist()
        with self._lock:
            self._reusable_prefix(messages, prompt)

    def _processors(self, prompt_len: int) -> Any:
        """The logits processors of :func:`rag.decode.logits_processors` for this generator."""
        return logits_processors(self.settings, self._abstain_starts, prompt_len)

    def _stop_ids(self) -> set[int]:
        return stop_ids(self.tokenizer, self.model.generation_config.eos_token_id)

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        """Yield the answer in pieces (whole words) as they are decoded, in the caller's thread;
        :attr:`last_stats` times it once the stream is exhausted."""
        import torch

        inputs = self._inputs(messages)
        input_ids = inputs["input_ids"]
        stats = GenerationStats(prompt_tokens=int(input_ids.shape[-1]))
        text = _Pieces(self.tokenizer)
        text.streamer.put(input_ids.cpu())  # skipped: it is the prompt
        with self._lock:
            t0 = time.perf_counter()
            t_first = 0.0
            try:
                prefix_kv = self._reusable_prefix(messages, input_ids[0].tolist())
                stats.reused_tokens = prefix_length(prefix_kv)
                steps = next_tokens(
                    self.model,
                    input_ids,
                    self._processors(stats.prompt_tokens),
                    self.settings.max_new_tokens,
                    self._stop_ids(),
                    sample=self.settings.temperature > 0,
                    step=self.compiled.current() if self.compiled is not None else None,
                    prefix_kv=prefix_kv,
                )
                for tid in steps:
                    now = time.perf_counter()
                    stats.new_tokens += 1
                    if stats.new_tokens == 1:
                        t_first = now
                        stats.prefill_s = now - t0
                    stats.decode_s = now - t_first
                    text.streamer.put(torch.tensor([tid]))
                    yield from text.drain()
            except Exception as e:
                raise RuntimeError(f"generation failed: {type(e).__name__}: {e}") from e
            text.streamer.end()
            yield from text.drain()
            self.last_stats = stats
