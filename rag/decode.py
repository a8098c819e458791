"""The local generator's decode loop, written out instead of ``model.generate()``, and its
compiled variant (``RAG_LLM_COMPILE``): prefill, then one-token steps on a KV cache, with the
logits processors ``generate()`` would apply plus the abstention gate (:mod:`rag.abstain`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rag.abstain import abstention_processor
from rag.config import Settings
from rag.kv_cache import growing_cache, prefix_length

log = logging.getLogger(__name__)


def logits_processors(settings: Settings, abstain_starts: list[int], prompt_len: int) -> Any:
    """The logits processors generate() would build from the settings, plus the abstention gate
    for a prompt of ``prompt_len`` tokens (``abstain_starts``: :func:`rag.abstain.abstention_starts`)."""
    from transformers import (
        LogitsProcessorList,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopPLogitsWarper,
    )

    s = settings
    procs = LogitsProcessorList()
    if s.tuning.repetition_penalty != 1.0:
        procs.append(RepetitionPenaltyLogitsProcessor(s.tuning.repetition_penalty))
    if s.tuning.abstain_min_prob > 0 and abstain_starts:
        procs.append(abstention_processor(abstain_starts, prompt_len, s.tuning.abstain_min_prob))
    if s.temperature > 0:
        procs.extend([TemperatureLogitsWarper(s.temperature), TopPLogitsWarper(0.9)])
    return procs


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
) -> Iterator[int]:
    """Decode up to ``max_new_tokens`` token ids after ``input_ids`` (1, n), one per iteration, in
    the calling thread; stops after a token of ``stop_ids``.

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
    (:meth:`rag.kv_cache.PromptPrefix.reusable`); the cache starts with them and the prefill
    runs the rest.
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
            if sample:
                token = torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1)
            else:
                token = scores.argmax(dim=-1, keepdim=True)
        pos += int(step_input.shape[-1])
        ids = torch.cat([ids, token], dim=-1)
        step_input = token
        tid = int(token)
        yield tid
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
