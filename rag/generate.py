"""The answer writer: a local transformers causal LM, streamed token by token, or any
OpenAI-compatible server (``RAG_LLM_BACKEND=openai``, see :class:`OpenAICompatibleGenerator`).

The packaged default is a GGUF file; transformers de-quantises it on load (~20-40 s),
so the converted model is saved once under the model cache and reloaded from there
(<1 s) afterwards. The LoRA adapter of ``RAG_LORA_ADAPTER`` (by default the one shipped for
the packaged generator, models/lora-<name>, see :mod:`rag.train.lora`) is merged into the
weights on load.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from rag.config import Settings
from rag.models import offline_by_default, pick_device, resolve_llm, resolve_lora_adapter, use_bf16
from rag.prompting import abstain_message

if TYPE_CHECKING:
    from openai import OpenAI
    from openai.types.chat import ChatCompletionMessageParam

log = logging.getLogger(__name__)


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
    # The de-quantised weights are plain tensors; drop the GGUF marker so they can be saved.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
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
    import warnings

    from peft import PeftModel

    try:
        with warnings.catch_warnings():  # peft 0.21 calls a transformers 5 API that warns of its own rename
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            peft_model = PeftModel.from_pretrained(model, adapter)
    except Exception as e:  # wrong base model, missing files, unreachable hub id
        raise RuntimeError(
            f"Cannot apply the LoRA adapter {adapter} to the generator ({type(e).__name__}: {e}). "
            "Set RAG_LORA_ADAPTER to an adapter trained for RAG_LLM_MODEL, or to 'none' for the base model."
        ) from e
    return peft_model.merge_and_unload()


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
    token_probs: list[float] = field(default_factory=list)  # each new token's probability, in order

    @property
    def tokens_per_s(self) -> float:
        return (self.new_tokens - 1) / self.decode_s if self.new_tokens > 1 and self.decode_s > 0 else 0.0


def full_attention_only(config: Any) -> bool:
    """Whether every layer of the model attends to the whole sequence (no sliding window, no
    special layers), so that a cache can be grown, or seeded with a prompt's start, by appending."""
    types = getattr(config, "layer_types", None) or []
    return not getattr(config, "sliding_window", None) and all(t == "full_attention" for t in types)


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    """How many tokens ``a`` and ``b`` share from the start.

    >>> common_prefix_len([1, 2, 3], [1, 2, 4, 5]), common_prefix_len([1], [2]), common_prefix_len([], [1])
    (2, 0, 0)
    """
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


@dataclass
class PromptPrefix:
    """What every prompt starts with (chat template and system prompt), run through the model
    once: its token ids and each layer's keys and values, (1, kv_heads, len(ids), head_dim).

    A causal model's keys and values at a position depend only on the tokens up to it, so a
    prompt that starts with ``ids`` can take them as they are and prefill only its own tokens
    (measured: docs/performance.md)."""

    ids: list[int]
    kv: list[tuple[Any, Any]]

    def reusable(self, prompt: Sequence[int]) -> list[tuple[Any, Any]]:
        """The keys and values of the tokens ``prompt`` shares with ``ids``; the prompt's last
        token is always left out, since its logits are needed."""
        k = min(common_prefix_len(self.ids, prompt), len(prompt) - 1)
        return [(key[..., :k, :], value[..., :k, :]) for key, value in self.kv] if k > 0 else []


def prefix_length(prefix_kv: Sequence[tuple[Any, Any]]) -> int:
    """How many tokens the per-layer keys and values of :meth:`PromptPrefix.reusable` cover."""
    return int(prefix_kv[0][0].shape[-2]) if prefix_kv else 0


def prompt_prefix(model: Any, ids: list[int]) -> PromptPrefix:
    """Run ``ids`` through ``model`` (a full-attention causal LM) and keep their keys and values."""
    import torch

    cache = growing_cache(model)
    with torch.inference_mode():
        x = torch.tensor([ids], device=next(model.parameters()).device)
        model(input_ids=x, past_key_values=cache, use_cache=True, logits_to_keep=1)
    return PromptPrefix(ids, [(layer.keys.clone(), layer.values.clone()) for layer in cache.layers])


def growing_cache(model: Any) -> Any:
    """A DynamicCache whose layers append into spare room instead of concatenating the whole
    cache at every step (transformers' DynamicLayer copies all cached keys and values per token:
    12% of a decode step's CPU time here; this raised decoding 5-12%, the same tokens).
    Models with sliding-window or other special layers keep the stock cache."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    if not full_attention_only(model.config):
        return DynamicCache(config=model.config)

    class GrowingLayer(DynamicLayer):
        def lazy_initialization(self, key_states: Any, value_states: Any) -> None:
            super().lazy_initialization(key_states, value_states)
            self._k: Any = None
            self._v: Any = None
            self._n = 0

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            n, new = self._n, key_states.shape[-2]
            if self._k is None or n + new > self._k.shape[-2]:
                room = max(2 * (n + new), 256)  # (batch, heads, room, head_dim)
                k = key_states.new_empty((*key_states.shape[:-2], room, key_states.shape[-1]))
                v = value_states.new_empty((*value_states.shape[:-2], room, value_states.shape[-1]))
                if n:
                    k[..., :n, :] = self._k[..., :n, :]
                    v[..., :n, :] = self._v[..., :n, :]
                self._k, self._v = k, v
            self._k[..., n : n + new, :] = key_states
            self._v[..., n : n + new, :] = value_states
            self._n = n + new
            self.keys, self.values = self._k[..., : self._n, :], self._v[..., : self._n, :]
            return self.keys, self.values

        def crop(self, tokens_to_remove: int) -> None:
            super().crop(tokens_to_remove)
            if self.is_initialized and self.keys is not None:
                self._n = self.keys.shape[-2]

    cache = DynamicCache()
    cache.layer_class_to_replicate = GrowingLayer
    return cache


def static_cache_length(needed: int, bucket: int = 256) -> int:
    """Room for a prompt and its answer in a static KV cache, rounded up to ``bucket`` tokens.

    A compiled decode step is as slow as its cache is long (every step attends over all of it,
    masked), so the cache is sized per question; rounding keeps the shapes a compiled graph
    sees to a handful.

    >>> static_cache_length(700 + 160), static_cache_length(256), static_cache_length(1)
    (1024, 256, 256)
    """
    return max(bucket, -(-needed // bucket) * bucket)


def next_tokens(
    model: Any,
    input_ids: Any,
    processors: Any,
    max_new_tokens: int,
    stop_ids: set[int],
    sample: bool,
    step: Any = None,
    prefix_kv: Sequence[tuple[Any, Any]] = (),
) -> Iterator[tuple[int, float]]:
    """Decode up to ``max_new_tokens`` tokens after ``input_ids`` (1, n), one per iteration, in
    the calling thread, as (token id, its probability after ``processors``); stops after a
    token of ``stop_ids``.

    The work of ``model.generate()`` for one unpadded sequence (prefill, then one-token steps on
    a KV cache; ``processors`` as generate() would apply them), written out so that it runs in the
    thread that reads the stream. Run in a helper thread beside the reader, as
    TextIteratorStreamer does, decoding was measured at 10-13 tokens/s instead of 19-21 here:
    every thread that runs torch keeps its own OpenMP pool, and once the pools hold more threads
    than there are cores, libgomp's workers stop spinning between operations and sleep (100
    spins), so each of the thousands of small operations per token waits for a wake-up.

    ``step``: a compiled ``model.forward`` (:class:`CompiledDecodeStep`) for the one-token steps.
    The prompt's prefill still runs eagerly, and the cache is then a transformers
    ``StaticCache`` sized by :func:`static_cache_length`, since a compiled graph wants fixed shapes.

    ``prefix_kv``: each layer's keys and values for the first k tokens of ``input_ids``
    (:meth:`PromptPrefix.reusable`); the cache starts with them and the prefill runs the rest.
    """
    import torch

    n = int(input_ids.shape[-1])
    k = prefix_length(prefix_kv)
    if step is None:
        cache = growing_cache(model)

        def forward(x: Any, pos: int) -> Any:
            return model(input_ids=x, past_key_values=cache, use_cache=True, logits_to_keep=1)

    else:
        from transformers import StaticCache

        cache = StaticCache(config=model.config, max_cache_len=static_cache_length(n + max_new_tokens))

        def forward(x: Any, pos: int) -> Any:
            width = int(x.shape[-1])
            positions = torch.arange(pos, pos + width, device=x.device)
            run = model if width > 1 else step  # (1, 1) steps only: one graph, no prefill shapes
            return run(input_ids=x, past_key_values=cache, use_cache=True, logits_to_keep=1, cache_position=positions)

    if k:
        with torch.inference_mode():
            for layer, (key, value) in enumerate(prefix_kv):
                cache.update(key, value, layer)  # copied into the cache's own tensors
    ids = input_ids
    step_input = input_ids[:, k:]
    pos = k
    for _ in range(max_new_tokens):
        with torch.inference_mode():
            out = forward(step_input, pos)
            scores = processors(ids, out.logits[:, -1, :].float())
            probs = torch.softmax(scores, dim=-1)
            token = torch.multinomial(probs, num_samples=1) if sample else scores.argmax(dim=-1, keepdim=True)
        pos += int(step_input.shape[-1])
        ids = torch.cat([ids, token], dim=-1)
        step_input = token
        tid = int(token)
        yield tid, float(probs[0, tid])
        if tid in stop_ids:
            return


class CompiledDecodeStep:
    """The generator's one-token decode step compiled by ``torch.compile`` (Inductor, dynamic
    shapes), for :func:`next_tokens`; ``RAG_LLM_COMPILE`` (rag/config.py) decides whether and when.

    Eager decoding of the 135M-parameter default spends about half of each step in Python and
    in thousands of small operator calls (the int8 products are ~13 of ~40 ms). Compiled, a step
    is a few fused C++ kernels: 39.7 tokens/s against 30.1 eager over 30 NFCorpus questions on a
    2-core AMD EPYC (AVX2), the same answers (docs/performance.md). Compiling costs ~90 s of CPU
    the first time and ~35 s once Inductor's on-disk cache (``TORCHINDUCTOR_CACHE_DIR``, under the
    model cache unless set) holds the kernels. :meth:`warm_up` compiles by decoding a few tokens of a
    dummy prompt; until it has succeeded, ``ready`` is unset and the eager loop is used. A
    failed compile is logged and leaves the eager loop in place.
    """

    def __init__(self, model: Any, cache_dir: Path | None = None) -> None:
        import torch

        if cache_dir is not None:
            os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir))
        self.model = model
        self.step = torch.compile(model.forward, dynamic=True)
        self.ready = threading.Event()
        self.error = ""
        self.seconds = 0.0

    def warm_up(self) -> bool:
        """Compile now (blocking); True when the compiled step is ready to use."""
        import torch
        from transformers import LogitsProcessorList

        t0 = time.perf_counter()
        try:
            vocab = int(self.model.config.vocab_size)
            prompt = (torch.arange(24).reshape(1, 24) * 7919 % vocab).to(self.model.device)
            for _ in next_tokens(self.model, prompt, LogitsProcessorList(), 3, set(), False, step=self.step):
                pass
        except Exception as e:  # compiling needs a C++ compiler and a supported model: else stay eager
            self.error = f"{type(e).__name__}: {e}"
            log.warning("decode step not compiled, decoding eagerly: %s", self.error)
            return False
        self.seconds = time.perf_counter() - t0
        self.ready.set()
        log.info("decode step compiled in %.0f s", self.seconds)
        return True

    def warm_up_in_background(self) -> threading.Thread:
        """Compile in a helper thread that ends when done (a live thread that ran torch would keep
        an OpenMP pool and slow every other thread's decoding; see :func:`next_tokens`)."""
        thread = threading.Thread(target=self.warm_up, name="compile-decode-step", daemon=True)
        thread.start()
        return thread

    def current(self) -> Any:
        """The compiled step once ready, else None (decode eagerly)."""
        return self.step if self.ready.is_set() else None


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


def abstention_starts(tokenizer: Any, abstain: str) -> list[int]:
    """The tokens that can start the abstention phrase as the model writes it at the start of its
    turn: the phrase's first token, and the first word in each case, with or without a leading
    space, where that is one token. The gate decides at the very first step, over all of them: a
    model kept from "The documents..." (or gated after two tokens) wrote "the documents..." or
    "The document does not contain..." instead of answering."""
    ids: list[int] = tokenizer(abstain, add_special_tokens=False)["input_ids"][:1]
    cases = (str, str.lower, str.capitalize, str.upper)
    for text in (f"{space}{case(w)}" for w in abstain.split()[:1] for case in cases for space in ("", " ")):
        toks = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(toks) == 1 and toks[0] not in ids:
            ids.append(toks[0])
    return ids


def gate_abstention(scores: Any, starts: Sequence[int], min_prob: float) -> float:
    """The abstention gate, applied to the first decoding step; edits ``scores`` (1, vocab) in place.

    The model may start the abstention phrase only if it gives the tokens that start it
    (``starts``) at least ``min_prob`` probability together. Below that they are all forbidden
    and the model writes its best answer instead, which the app's citation check then verifies.
    Returns that probability.

    >>> import torch
    >>> scores = torch.log(torch.tensor([[0.5, 0.3, 0.2]]))  # tokens 0 and 1 start the abstention
    >>> round(gate_abstention(scores, [0, 1], 0.7), 2), bool(scores.isfinite().all())  # 0.8: allowed
    (0.8, True)
    >>> round(gate_abstention(scores, [0, 1], 0.9), 2), scores[0].tolist()[:2]  # 0.8 < 0.9
    (0.8, [-inf, -inf])
    """
    import torch

    p = float(torch.softmax(scores[0].float(), dim=-1)[list(starts)].sum())
    if p < min_prob:
        scores[0, list(starts)] = -float("inf")
    return p


def _abstention_processor(starts: list[int], prompt_len: int, min_prob: float) -> Any:
    from transformers import LogitsProcessor

    class AbstentionGate(LogitsProcessor):
        def __call__(self, input_ids: Any, scores: Any) -> Any:
            if input_ids.shape[-1] == prompt_len:  # the answer's first token only
                gate_abstention(scores, starts, min_prob)
            return scores

    return AbstentionGate()


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


class TransformersGenerator:
    """Implements :class:`rag.interfaces.Generator` with an in-process model.

    ``adapter`` is the LoRA adapter merged into the model (a folder or HF id), None for the base model.
    """

    def __init__(self, settings: Settings) -> None:
        import torch

        self.settings = settings
        self.name = settings.llm_model
        self.device = pick_device(settings.device)
        self.bf16 = use_bf16(settings, self.device)
        model, self.tokenizer, self.loaded_from = load_causal_lm(settings)
        self.adapter = resolve_lora_adapter(settings.lora_adapter, settings.llm_model)
        if self.adapter is not None:
            model = merge_adapter(model, self.adapter)  # merged in the cached dtype, before the cast below
        # bf16 *weights*, not autocast: measured here over a ~1,000-token prompt, autocast made
        # decoding 2.7x slower than fp32 (5.8 vs 15.5 tokens/s; it re-casts every weight at every
        # step), while bf16 weights prefill 3x faster than fp32 (0.7 vs 2.1 s) and decode at
        # about the fp32 speed, in half the memory.
        dtype = torch.bfloat16 if self.bf16 else torch.float32
        self.model = model.to(device=self.device, dtype=dtype).eval()
        self.int8_decode = False
        if settings.llm_int8_decode == "on" or (settings.llm_int8_decode == "auto" and self.device == "cpu"):
            from rag.quantize import quantize_for_decode

            self.int8_decode = quantize_for_decode(self.model) > 0
        self.compiled: CompiledDecodeStep | None = None
        if settings.llm_compile != "off":
            self.compiled = CompiledDecodeStep(self.model, settings.model_cache_dir / "inductor")
            if settings.llm_compile == "on":
                self.compiled.warm_up()
            else:
                self.compiled.warm_up_in_background()
        self.torch = torch
        # One generation at a time: parallel decodes on 2 cores only slow each other down.
        self._lock = threading.Lock()
        self.last_stats = GenerationStats()
        self._abstain_starts = abstention_starts(self.tokenizer, abstain_message())
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
        if not self.settings.llm_prefix_cache or not full_attention_only(self.model.config):
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
        """The logits processors generate() would build from the settings, plus the abstention gate."""
        from transformers import (
            LogitsProcessorList,
            RepetitionPenaltyLogitsProcessor,
            TemperatureLogitsWarper,
            TopPLogitsWarper,
        )

        s = self.settings
        procs = LogitsProcessorList()
        if s.repetition_penalty != 1.0:
            procs.append(RepetitionPenaltyLogitsProcessor(s.repetition_penalty))
        if s.abstain_min_prob > 0 and self._abstain_starts:
            procs.append(_abstention_processor(self._abstain_starts, prompt_len, s.abstain_min_prob))
        if s.temperature > 0:
            procs.extend([TemperatureLogitsWarper(s.temperature), TopPLogitsWarper(0.9)])
        return procs

    def _stop_ids(self) -> set[int]:
        return set(self.model.generation_config.eos_token_id)  # every end token (load_causal_lm)

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        """Yield the answer in pieces (whole words) as they are decoded, in the caller's thread;
        :attr:`last_stats` times it once the stream is exhausted."""
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
                for tid, prob in steps:
                    now = time.perf_counter()
                    stats.new_tokens += 1
                    stats.token_probs.append(prob)
                    if stats.new_tokens == 1:
                        t_first = now
                        stats.prefill_s = now - t0
                    stats.decode_s = now - t_first
                    text.streamer.put(self.torch.tensor([tid]))
                    yield from text.drain()
            except Exception as e:
                raise RuntimeError(f"generation failed: {type(e).__name__}: {e}") from e
            text.streamer.end()
            yield from text.drain()
            self.last_stats = stats


class GeneratorUnavailable(RuntimeError):
    """The configured generation backend cannot answer; the message says why and how to fix it."""


class OpenAICompatibleGenerator:
    """Implements :class:`rag.interfaces.Generator` against an OpenAI-compatible server
    (OpenAI, vLLM, llama.cpp's server, Ollama, ``python -m rag.serve_openai``, ...).

    With ``openai_model`` empty, the first model the server lists under /v1/models is used
    (one request at construction). Errors from the server are re-raised as
    :class:`GeneratorUnavailable` with what went wrong and what to change.
    """

    def __init__(self, settings: Settings, client: OpenAI | None = None) -> None:
        from openai import OpenAI, Timeout

        self.settings = settings
        self.base_url = settings.openai_base_url.rstrip("/")
        self._key_set = settings.openai_api_key is not None
        if client is None:
            # Only RAG_OPENAI_API_KEY is used (never the OPENAI_API_KEY the openai package would
            # read by itself), so a real OpenAI key is not sent to whatever server is configured.
            # Self-hosted servers usually want no key; the client insists on some value.
            key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "no-key"
            timeout = settings.openai_timeout_s
            client = OpenAI(base_url=self.base_url, api_key=key, timeout=Timeout(timeout, connect=min(timeout, 10.0)))
        self.client = client
        self.model = settings.openai_model or self._first_model()
        self.name = f"openai:{self.model}"

    def list_models(self) -> list[str]:
        """Model ids the server offers (GET /models)."""
        from openai import OpenAIError

        try:
            return [m.id for m in self.client.models.list().data]
        except OpenAIError as e:
            raise self._explain(e, "listing the models") from e

    def _first_model(self) -> str:
        models = self.list_models()
        if not models:
            raise GeneratorUnavailable(
                f"The OpenAI-compatible server at {self.base_url} lists no models under /models. "
                "Set RAG_OPENAI_MODEL to the model it serves."
            )
        return models[0]

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        from openai import OpenAIError

        s = self.settings
        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=cast("list[ChatCompletionMessageParam]", messages),
                stream=True,
                max_tokens=s.max_new_tokens,
                temperature=s.temperature,
            )
            with response:  # closes the HTTP response even when the caller stops early
                for chunk in response:
                    if not chunk.choices:  # e.g. a trailing usage-only chunk
                        continue
                    piece = chunk.choices[0].delta.content
                    if piece:
                        yield piece
        except OpenAIError as e:
            raise self._explain(e, "generating an answer") from e

    def _explain(self, e: Exception, doing: str) -> GeneratorUnavailable:
        """Turn an ``openai`` error into one that names the problem and the fix."""
        from openai import (
            APIConnectionError,
            APIError,
            APIStatusError,
            APITimeoutError,
            AuthenticationError,
            BadRequestError,
            NotFoundError,
            PermissionDeniedError,
        )

        url = self.base_url
        where = f"the OpenAI-compatible server at {url}"
        subject = where[0].upper() + where[1:]  # at the start of a sentence
        detail = _server_message(e)
        if isinstance(e, APITimeoutError):
            return GeneratorUnavailable(
                f"No answer from {where} within {self.settings.openai_timeout_s:g} s while {doing}. "
                "Check that the server is up and not overloaded, raise RAG_OPENAI_TIMEOUT_S, or set "
                "RAG_LLM_BACKEND=local to use the in-process model."
            )
        if isinstance(e, APIConnectionError):
            cause = e.__cause__ or e.__context__
            because = f" ({type(cause).__name__}: {cause})" if cause else ""
            return GeneratorUnavailable(
                f"Cannot reach {where}{because}. Start the server (for example "
                "`python -m rag.serve_openai --port 8080` serves the packaged model at "
                "http://127.0.0.1:8080/v1), correct RAG_OPENAI_BASE_URL, or set RAG_LLM_BACKEND=local "
                "to use the in-process model."
            )
        if isinstance(e, AuthenticationError | PermissionDeniedError):
            fix = (
                "Set RAG_OPENAI_API_KEY to a key the server accepts."
                if not self._key_set
                else "Check RAG_OPENAI_API_KEY: the server does not accept the key it holds."
            )
            return GeneratorUnavailable(f"{subject} refused the request (HTTP {e.status_code}): {detail}. {fix}")
        if isinstance(e, NotFoundError | BadRequestError) and doing != "listing the models":
            try:
                available = [m.id for m in self.client.models.list().data]
            except Exception:
                available = None
            if available is not None and self.model not in available:
                listed = ", ".join(repr(m) for m in available) or "(none)"
                return GeneratorUnavailable(
                    f"{subject} has no model {self.model!r} (HTTP {e.status_code}). "
                    f"Available models: {listed}. Set RAG_OPENAI_MODEL to one of them, or leave it "
                    "empty to use the first."
                )
        if isinstance(e, NotFoundError):
            return GeneratorUnavailable(
                f"{subject} answered 404 for {e.request.url} while {doing}: {detail}. Check "
                "RAG_OPENAI_BASE_URL: it must be the API root, usually ending in /v1."
            )
        if isinstance(e, APIStatusError):
            return GeneratorUnavailable(f"{subject} failed while {doing} (HTTP {e.status_code}): {detail}")
        if isinstance(e, APIError):
            return GeneratorUnavailable(f"{subject} failed while {doing}: {detail}")
        return GeneratorUnavailable(f"Calling {where} failed while {doing}: {type(e).__name__}: {e}")


def _server_message(e: Exception) -> str:
    """The server's own error text (OpenAI's ``{"error": {"message": ...}}``), else the exception's."""
    body = getattr(e, "body", None)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"]).rstrip(".")
    if isinstance(body, str) and body.strip():
        return body.strip()[:300]
    return str(getattr(e, "message", e)).rstrip(".")
