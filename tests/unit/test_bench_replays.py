"""The pure replay parts of the answer benchmarks (bench/ is outside the doctest paths)."""

from __future__ import annotations

import doctest
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["second_reading", "citation_gate", "squad_replay", "floor"])
def test_bench_doctests(name: str) -> None:
    result = doctest.testmod(_load(name))
    assert result.attempted > 0 and result.failed == 0


def test_second_reading_replay_drops_only_disagreeing_answers() -> None:
    replay = _load("second_reading").replay

    def reading(text: str, chunk: str, has: bool, f1: float) -> dict[str, object]:
        return {"text": text, "cited": [{"id": chunk, "has_answer": has}], "abstained": False, "f1": f1}

    right, wrong = reading("1889 [1].", "a", True, 1.0), reading("Gustave Eiffel [2].", "b", False, 0.0)
    refusal = {"text": "", "cited": [], "abstained": True, "f1": 0.0}
    records = [
        {"indexed": True, "views": {"orig": right, "rev": reading("In 1889 [2].", "a", True, 1.0)}},
        {"indexed": True, "views": {"orig": wrong, "rev": right}},  # changed its answer: dropped
        {"indexed": True, "views": {"orig": right}},  # one source, no second reading: kept
        {"indexed": False, "views": {"orig": wrong, "rev": refusal}},  # held back: now abstains
    ]
    before, after = replay(records, [], "readings_agree"), replay(records, ["rev"], "readings_agree")
    assert (before["citation_precision"], before["correct_abstention"]) == (0.667, 0.0)
    assert (after["citation_precision"], after["correct_abstention"], after["answered"]) == (1.0, 1.0, 0.667)


def test_memory_bench_reads_rss_and_resets_its_peak() -> None:
    """bench/memory.py's figures: VmRSS and VmHWM in GiB; after a reset the peak restarts from
    the current RSS instead of keeping an earlier, larger one."""
    memory = _load("memory")
    ballast = bytearray(64 * 2**20)  # raise the peak by 64 MiB, then free it
    ballast[::4096] = b"x" * (len(ballast) // 4096)  # touch every page so it counts
    del ballast
    before = memory.proc_status("VmHWM")
    memory.reset_peak()
    rss, peak = memory.proc_status("VmRSS"), memory.proc_status("VmHWM")
    assert 0 < rss <= peak < before
    with pytest.raises(RuntimeError, match="needs Linux"):
        memory.proc_status("NoSuchField")


def test_memory_bench_stand_in_vectors_keep_the_real_models_name_and_shape() -> None:
    """The index is written with the real model's name and token counter (so the app opens it
    as its own) and random unit vectors of the real dimension."""
    import numpy as np

    class Real:
        name = "sentence-transformers/all-MiniLM-L6-v2"

        def count_tokens(self, text: str) -> int:
            return len(text.split())

        def embed_query(self, text: str) -> list[float]:
            return [0.0] * 384

    stand = _load("memory").RandomVectors(Real())
    vectors = stand.embed_documents(["a", "b", "c"])
    assert stand.name == Real.name and stand.count_tokens("two words") == 2
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert stand.embed_query("q").shape == (384,)
