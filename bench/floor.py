"""The floor this CPU's arithmetic puts under the ingest and time-to-first-token targets
(docs/performance.md), beside what we measure.

    .venv/bin/python bench/floor.py [--part both|ingest|ttft] [--docs 1000] [--questions 30] [--home DIR]

A model's forward pass costs a fixed number of floating-point operations; no implementation runs
them faster than the CPU's matrix-product peak. This prints, for the machine it runs on:

- ``peak_gflops``: the fastest matrix products measured here, per dtype the models compute in
  (2,048^3 and the models' own linear shapes; the highest rate seen is taken as the peak).
- ``ingest``: the textbook LangChain ingest timed on ``--docs`` NFCorpus documents (bench/ingest.py's
  baseline), and how many chunks/s our own chunks could be embedded at if every encoder FLOP
  ran at the peak (embedding only: no parsing, storing or BM25). ``best_possible_speedup`` is that
  over the baseline's measured chunks/s: the most the ingest target (2.5x) can be on this CPU.
  The baseline's own FLOPs over its time show how close to the peak it already runs.
- ``ttft``: the answer benchmark's questions on its ~11,871-chunk index (``--home``, built by
  bench/answer.py's indexing if missing), each timed by stage as the pipeline times it (first
  stage, rerank, prefill), with the FLOPs of its reranker passes (as the pipeline cuts them) and
  of its prefill (the prompt after the cached prefix, causal attention). ``floor_ms_*`` adds the
  first stage's measured time to those FLOPs at the peak: the least a time to first token can be
  here with these models and settings (target: 1.5 s).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def encoder_flops(lengths: Sequence[int], hidden: int, layers: int, intermediate: int) -> int:
    """FLOPs of a BERT-style encoder over sequences of these token lengths (no padding): per
    token and layer, the four attention projections and the two feed-forward products; per
    sequence and layer, scores and the weighted sum (4 x length^2 x hidden). 2 FLOPs per
    multiply-add; layer norms, GELU and softmax left out (a floor).

    >>> encoder_flops([128], hidden=384, layers=6, intermediate=1536)  # one MiniLM-L6 pass
    2868903936
    >>> encoder_flops([100, 28], 384, 6, 1536) < encoder_flops([128], 384, 6, 1536)  # attention is quadratic
    True
    """
    per_token = 2 * layers * (4 * hidden * hidden + 2 * hidden * intermediate)
    return sum(n * per_token + layers * 4 * n * n * hidden for n in lengths)


def prefill_flops(new: int, cached: int, hidden: int, layers: int, intermediate: int, kv_dim: int) -> int:
    """FLOPs of a Llama-style decoder prefilling ``new`` prompt tokens after ``cached`` ones whose
    keys and values it already holds: per new token and layer q/o (hidden^2), k/v (hidden x
    kv_dim) and gate/up/down (hidden x intermediate); causal attention, where new token i reads
    ``cached + i + 1`` positions. The output layer runs for the last token only (left out).

    >>> prefill_flops(589, 108, hidden=576, layers=30, intermediate=1536, kv_dim=192)  # SmolLM2-135M
    141473088000
    >>> linear = 2 * 30 * (2 * 576**2 + 2 * 576 * 192 + 3 * 576 * 1536)  # per token
    >>> prefill_flops(10, 0, 576, 30, 1536, 192) == 10 * linear + 30 * 4 * 576 * sum(range(1, 11))  # reads 1..10
    True
    """
    per_token = 2 * layers * (2 * hidden * hidden + 2 * hidden * kv_dim + 3 * hidden * intermediate)
    attended = new * cached + new * (new + 1) // 2
    return new * per_token + layers * 4 * hidden * attended


def gflops_per_s(fn: Callable[[], Any], flops: float, reps: int) -> float:
    """Rate of ``fn`` (which does ``flops`` operations) over ``reps`` calls, after two warm-ups."""
    fn()
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return flops * reps / (time.perf_counter() - t0) / 1e9


def peak_gflops(dtype: Any, shapes: Sequence[tuple[int, int, int]], rounds: int = 3) -> float:
    """The fastest of (m x k) @ (k x n) products in ``dtype``: 2,048^3 and ``shapes`` (m, k, n),
    each timed ``rounds`` times (this VM's speed drifts; the best round is the machine's peak)."""
    import torch

    best = 0.0
    for _ in range(rounds):
        for m, k, n in [(2048, 2048, 2048), *shapes]:
            x, w = torch.randn(m, k, dtype=dtype), torch.randn(n, k, dtype=dtype)
            reps = max(5, int(1e10 / (2 * m * k * n)))
            with torch.inference_mode():
                rate = gflops_per_s(lambda x=x, w=w: torch.nn.functional.linear(x, w), 2.0 * m * k * n, reps)
            best = max(best, rate)
    return best


def _bench_module(name: str) -> ModuleType:
    """A sibling benchmark as a module (bench/ is not a package; ``ingest`` would be ours)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lengths(tokenizer: Any, texts: list[str], max_length: int) -> list[int]:
    return [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]


def ingest_floor(docs: int) -> dict[str, Any]:
    from ingest.chunking import chunk_document, make_splitter
    from ingest.loaders import load_path
    from rag.config import Settings
    from rag.eval.datasets import datasets_dir
    from rag.services import Services

    bench_ingest = _bench_module("ingest")
    with tempfile.TemporaryDirectory(prefix="grounded-floor-") as tmp:
        root = Path(tmp)
        files = bench_ingest.export(datasets_dir() / "nfcorpus", root / "docs", docs)
        base = bench_ingest.baseline(files, root)  # the textbook ingest, timed
        base_texts = [d.page_content for d in bench_ingest.textbook_splits(files)]
        settings = Settings(home=root / "grounded", _env_file=None)  # type: ignore[call-arg]
        embedder = Services(settings).embedder
        splitter = make_splitter(embedder.count_tokens, settings.chunk_tokens, settings.chunk_overlap_tokens)
        # our chunks, cut as the Indexer cuts them
        texts = [c.text for f in files for c in chunk_document(load_path(f, settings.max_file_bytes)[0], splitter)]
    import torch

    st = embedder.model
    cfg = st[0].auto_model.config

    def gflop(chunks: list[str]) -> float:
        lengths = _lengths(st.tokenizer, chunks, st.max_seq_length)
        return encoder_flops(lengths, cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size) / 1e9

    ours, theirs = gflop(texts), gflop(base_texts)
    dtype = torch.bfloat16 if embedder.bf16 else torch.float32
    peak = peak_gflops(dtype, [(16 * 160, cfg.hidden_size, cfg.intermediate_size)])
    fp32_peak = peak if dtype == torch.float32 else peak_gflops(torch.float32, [])
    at_peak = len(texts) / (ours / peak)
    return {
        "docs": docs,
        "baseline_langchain": {
            **base,
            "encoder_gflop": round(theirs, 1),
            # over the whole ingest's time, so the encoder alone ran somewhat faster
            "encoder_gflops_achieved": round(theirs / base["seconds"]),
            "fp32_peak_gflops": round(fp32_peak),
        },
        "grounded_chunks": len(texts),
        "grounded_encoder_gflop": round(ours, 1),
        "dtype": str(dtype).removeprefix("torch."),
        "peak_gflops": round(peak),
        "grounded_chunks_per_s_at_peak": round(at_peak, 1),
        "best_possible_speedup": round(at_peak / base["chunks_per_s"], 2),
        "target": 2.5,
    }


def ttft_floor(home: Path, docs: int, questions: int) -> dict[str, Any]:
    import torch

    from rag.config import Settings
    from rag.services import Services

    bench_answer = _bench_module("answer")
    queries = _bench_module("scale").nf_queries(1 + questions)
    services = Services(Settings(home=home, _env_file=None))  # type: ignore[call-arg]
    bench_answer.ensure_index(services, home, docs)
    pipeline = services.pipeline
    reranker, generator = services.reranker, pipeline.generator
    if reranker is None or not hasattr(generator, "model"):
        raise SystemExit("the TTFT floor needs the local generator and a reranker (the defaults)")
    g, r = generator.model.config, reranker.model.model.config
    kv_dim = g.num_key_value_heads * (g.hidden_size // g.num_attention_heads)
    g_dtype, r_dtype = next(generator.model.parameters()).dtype, next(reranker.model.model.parameters()).dtype
    shapes: dict[Any, list[tuple[int, int, int]]] = {g_dtype: [], r_dtype: []}
    shapes[g_dtype].append((590, g.hidden_size, g.intermediate_size))  # a prompt's feed-forward product
    shapes[r_dtype].append((30 * 112, r.hidden_size, r.intermediate_size))  # 30 pairs' feed-forward product
    peaks = {dtype: peak_gflops(dtype, dtype_shapes) for dtype, dtype_shapes in shapes.items()}

    passes: list[list[int]] = []  # each reranker pass's pair lengths, as the model reads them
    predict = reranker._predict

    def tapped(pairs: Sequence[tuple[str, str]], batch_size: int) -> Any:
        n = max(reranker._lengths(pairs))
        passes.append([n] * len(pairs))  # padded to the pass's longest pair
        return predict(pairs, batch_size)

    reranker._predict = tapped
    pipeline.ask(queries[0])  # warm-up
    rows = []
    for q in queries[1:]:
        passes.clear()
        t = pipeline.ask(q).timings_ms
        stats = generator.last_stats
        new, cached = stats.prompt_tokens - stats.reused_tokens, stats.reused_tokens
        rr = sum(encoder_flops(p, r.hidden_size, r.num_hidden_layers, r.intermediate_size) for p in passes)
        gen = prefill_flops(new, cached, g.hidden_size, g.num_hidden_layers, g.intermediate_size, kv_dim)
        first_stage = t["retrieve"] - t.get("rerank", 0.0)
        floor = first_stage + (rr / peaks[r_dtype] + gen / peaks[g_dtype]) / 1e6
        rows.append(
            {"first_stage_ms": first_stage, "rerank_ms": t.get("rerank", 0.0), "prefill_ms": t["first_token"],
             "ttft_ms": t["retrieve"] + t["first_token"], "rerank_gflop": rr / 1e9, "prefill_gflop": gen / 1e9,
             "prompt_tokens": stats.prompt_tokens, "floor_ms": floor}
        )  # fmt: skip

    def p50(key: str) -> float:
        return round(statistics.median(row[key] for row in rows), 1)

    floors = [row["floor_ms"] for row in rows]
    return {
        "chunks": services.registry.stats()["chunks"],
        "questions": len(rows),
        "dtypes": {"generator": str(g_dtype).removeprefix("torch."), "reranker": str(r_dtype).removeprefix("torch.")},
        "peak_gflops": {str(d).removeprefix("torch."): round(v) for d, v in peaks.items()},
        **{f"{k}_p50": p50(k) for k in ("first_stage_ms", "rerank_ms", "prefill_ms", "ttft_ms")},
        **{f"{k}_p50": p50(k) for k in ("rerank_gflop", "prefill_gflop", "prompt_tokens")},
        "rerank_gflops_achieved_p50": round(statistics.median(x["rerank_gflop"] / x["rerank_ms"] * 1e3 for x in rows)),
        "prefill_gflops_achieved_p50": round(
            statistics.median(x["prefill_gflop"] / x["prefill_ms"] * 1e3 for x in rows)
        ),
        "floor_ms_p50": round(statistics.median(floors)),
        "floor_ms_max": round(max(floors)),
        "questions_whose_floor_is_within_target": sum(f <= 1500 for f in floors),
        "target_ms": 1500,
        "torch_threads": torch.get_num_threads(),
    }


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--part", choices=["both", "ingest", "ttft"], default="both")
    p.add_argument("--docs", type=int, default=1000, help="NFCorpus documents for the ingest part")
    p.add_argument("--questions", type=int, default=30)
    p.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "grounded-bench-10k",
                   help="the answer benchmark's index (3,633 NFCorpus documents; built here if missing)")  # fmt: skip
    args = p.parse_args()
    out: dict[str, Any] = {"cpu_count": os.cpu_count()}
    if args.part in ("both", "ingest"):
        out["ingest"] = ingest_floor(args.docs)
        print(json.dumps({"ingest": out["ingest"]}), file=sys.stderr)
    if args.part in ("both", "ttft"):
        out["ttft"] = ttft_floor(args.home, 3633, args.questions)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
