"""Answer latency and memory over a ~10k-chunk index, models already loaded.

    .venv/bin/python bench/answer.py [--docs 3633] [--questions 10] [--home DIR] [--no-baseline] [--json FILE]

Indexes NFCorpus documents into HOME (reused when it already holds them), loads every default
model once, then asks NFCorpus test queries through the full pipeline and prints one JSON
object: index size, time to first token (p50/max, from the question to the first streamed
piece: retrieval + prompt prefill), decode speed (new tokens after the first / time from the
first to the last new token, stamped in the generator's decode loop), and the process RSS with all models
loaded. The baseline, measured after it in the same run on the same questions, is the same
generator decoding with its dense bf16 weights, eagerly (``Tuning.llm_int8_decode=off``,
``RAG_LLM_COMPILE=off``; skip it with ``--no-baseline``). Each pass also reports the time to
the final, checked answer (``answer_s``). With ``RAG_LLM_COMPILE=on`` a third pass,
int8 decoding without the compiled step, is timed too, and the answers of the compiled and eager
passes are compared (``same_answers_as_eager``). ``--json`` also writes the object to a file
(``make bench-answer``: results/bench-answer.json).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


class StatsTap:
    """Passes a generator's streams through and keeps each finished stream's stats, so each
    answer's figures are read from its own stream."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.stats: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def stream(self, messages: list[dict[str, str]]) -> Any:
        yield from self.inner.stream(messages)
        self.stats.append(self.inner.last_stats)


def time_answers(pipeline: Any, queries: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Ask ``queries[1:]`` (``queries[0]`` warms up) and time each answer's stream; returns the
    figures and the answers' texts. ``answer_s`` runs from the question to the final, checked
    answer."""
    pipeline.ask(queries[0])  # warm-up (first call pays one-off costs)
    tap = pipeline.generator = StatsTap(pipeline.generator)
    try:
        return _time_answers(pipeline, tap, queries[1:])
    finally:
        pipeline.generator = tap.inner


def _time_answers(pipeline: Any, tap: StatsTap, queries: list[str]) -> tuple[dict[str, Any], list[str]]:
    ttft: list[float] = []
    decode: list[float] = []
    generated: list[int] = []
    prompt_tokens: list[int] = []
    decode_total = [0, 0.0]  # tokens after the first, seconds: all answers pooled
    abstained = 0
    answers: list[str] = []
    answer_s: list[float] = []
    for q in queries:
        t0 = time.perf_counter()
        first = None
        n_streams = len(tap.stats)
        stream = pipeline.stream(q)
        for _piece in stream:
            if first is None:
                first = time.perf_counter()
        end = time.perf_counter()
        assert stream.answer is not None
        answers.append(stream.answer.text)
        if stream.answer.abstained and not stream.answer.sources:
            abstained += 1  # nothing relevant: no generation to time
            continue
        ttft.append((first or end) - t0)
        answer_s.append(end - t0)
        stats = tap.stats[n_streams]  # the streamed answer's, timed in the decode loop: real token count
        if stats.new_tokens > 1:
            decode.append(stats.tokens_per_s)
            decode_total[0] += stats.new_tokens - 1
            decode_total[1] += stats.decode_s
            generated.append(stats.new_tokens)
            prompt_tokens.append(stats.prompt_tokens)
    figures = {
        "questions_timed": len(ttft),
        "abstained_without_generation": abstained,
        "ttft_s_p50": round(statistics.median(ttft), 2),
        "ttft_s_max": round(max(ttft), 2),
        "decode_tokens_per_s_p50": round(statistics.median(decode), 1),
        "decode_tokens_per_s_pooled": round(decode_total[0] / decode_total[1], 1) if decode_total[1] else None,
        "tokens_generated_p50": statistics.median(generated),
        "prompt_tokens_p50": statistics.median(prompt_tokens),
        "answer_s_p50": round(statistics.median(answer_s), 2),
        "answer_s_max": round(max(answer_s), 2),
    }
    return figures, answers


def ensure_index(services: Any, home: Path, docs: int) -> None:
    """Index the first ``docs`` NFCorpus documents into ``home`` unless it already holds that many
    (3,633 documents make the 11,871-chunk index the answer benchmarks use)."""
    if services.document_count() >= docs:
        return
    import subprocess

    from rag.eval.datasets import datasets_dir

    out = home.parent / (home.name + "-docs")
    export = [sys.executable, str(Path(__file__).parent / "export_corpus.py"), str(datasets_dir() / "nfcorpus")]
    subprocess.run([*export, str(out), "--limit", str(docs)], check=True, capture_output=True)
    t = time.perf_counter()
    services.indexer.ingest_paths(sorted(out.glob("*.txt")))
    print(f"indexed in {time.perf_counter() - t:.0f} s", file=sys.stderr)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--docs", type=int, default=3633)
    p.add_argument("--questions", type=int, default=10)
    p.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "grounded-bench-10k")
    p.add_argument("--no-baseline", dest="baseline", action="store_false",
                   help="skip the second pass with dense bf16 decoding")  # fmt: skip
    p.add_argument("--json", type=Path, help="also write the JSON object to this file")
    args = p.parse_args()
    import psutil
    from scale import nf_queries  # bench/, the script's own folder

    from rag.config import Settings
    from rag.services import Services

    services = Services(Settings(home=args.home, _env_file=None))  # type: ignore[call-arg]
    ensure_index(services, args.home, args.docs)
    pipeline = services.pipeline  # loads the generator
    queries = nf_queries(1 + args.questions)  # NFCorpus test queries, in file order
    ours, our_answers = time_answers(pipeline, queries)
    rss = psutil.Process().memory_info().rss  # every default model loaded, before the baseline's
    result = {
        "chunks": services.registry.stats()["chunks"],
        **ours,
        "rss_gib": round(rss / 2**30, 2),
        "bf16": bool(getattr(services.generator, "bf16", False)),
        "int8_decode": bool(getattr(services.generator, "int8_decode", False)),
        "llm_compile": services.settings.llm_compile,
    }
    compiled = getattr(services.generator, "compiled", None)
    if compiled is not None:
        result["compile_s"] = round(compiled.seconds, 1)
        result["compiled_steps_used"] = compiled.ready.is_set()
    if args.baseline and result["int8_decode"]:
        # Baseline, same run and questions: the same generator decoding with its dense bf16 weights.
        from rag.generate import TransformersGenerator

        if compiled is not None:  # the compiled step against the same int8 decoding, eager
            pipeline.generator = TransformersGenerator(services.settings.model_copy(update={"llm_compile": "off"}))
            result["eager_int8_decode"], eager_answers = time_answers(pipeline, queries)
            result["same_answers_as_eager"] = our_answers == eager_answers
            eager = result["eager_int8_decode"]["decode_tokens_per_s_pooled"]
            if eager:
                result["compile_speedup"] = round(ours["decode_tokens_per_s_pooled"] / eager, 2)
        tuning = dataclasses.replace(services.settings.tuning, llm_int8_decode="off")
        update = {"tuning": tuning, "llm_compile": "off"}
        pipeline.generator = TransformersGenerator(services.settings.model_copy(update=update))
        result["baseline_dense_decode"], _ = time_answers(pipeline, queries)
        base = result["baseline_dense_decode"]["decode_tokens_per_s_pooled"]
        if base:
            result["decode_speedup"] = round(ours["decode_tokens_per_s_pooled"] / base, 2)
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
