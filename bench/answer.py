"""Answer latency and memory over a ~10k-chunk index, models already loaded.

    .venv/bin/python bench/answer.py [--docs 3633] [--questions 10] [--home DIR]

Indexes NFCorpus documents into HOME (reused when it already holds them), loads every default
model once, then asks NFCorpus test queries through the full pipeline and prints one JSON
object: index size, time to first token (p50/max, from the question to the first streamed
piece: retrieval + prompt prefill), decode speed (generated tokens / time after the first
token), and the process RSS with all models loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "nfcorpus"


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--docs", type=int, default=3633)
    p.add_argument("--questions", type=int, default=10)
    p.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "grounded-bench-10k")
    args = p.parse_args()
    import psutil

    from rag.config import Settings
    from rag.services import Services

    services = Services(Settings(home=args.home, _env_file=None))  # type: ignore[call-arg]
    if services.document_count() < args.docs:
        import subprocess

        docs = args.home.parent / (args.home.name + "-docs")
        subprocess.run(
            [sys.executable, str(Path(__file__).parent / "export_corpus.py"), str(SHARED), str(docs),
             "--limit", str(args.docs)],
            check=True, capture_output=True,
        )
        t = time.perf_counter()
        services.indexer.ingest_paths(sorted(docs.glob("*.txt")))
        print(f"indexed in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    pipeline = services.pipeline  # loads the generator
    tokenizer = services.generator.tokenizer  # type: ignore[attr-defined]
    queries = []
    with open(SHARED / "queries.jsonl", encoding="utf-8") as fh:
        test_ids = {line.split("\t")[0] for line in (SHARED / "qrels" / "test.tsv").read_text().splitlines()[1:]}
        for line in fh:
            q = json.loads(line)
            if q["_id"] in test_ids:
                queries.append(q["text"])
    pipeline.ask(queries[0])  # warm-up (first call pays one-off costs)
    ttft, decode, generated, abstained = [], [], [], 0
    for q in queries[1 : 1 + args.questions]:
        t0 = time.perf_counter()
        first = None
        pieces = []
        stream = pipeline.stream(q)
        for piece in stream:
            if first is None:
                first = time.perf_counter()
            pieces.append(piece)
        end = time.perf_counter()
        assert stream.answer is not None
        if stream.answer.abstained and not stream.answer.sources:
            abstained += 1  # nothing relevant: no generation to time
            continue
        n = len(tokenizer("".join(pieces), add_special_tokens=False)["input_ids"])
        ttft.append((first or end) - t0)
        if n > 1 and first is not None:
            decode.append((n - 1) / (end - first))
            generated.append(n)
    rss = psutil.Process().memory_info().rss
    print(
        json.dumps(
            {
                "chunks": services.registry.stats()["chunks"],
                "questions_timed": len(ttft),
                "abstained_without_generation": abstained,
                "ttft_s_p50": round(statistics.median(ttft), 2),
                "ttft_s_max": round(max(ttft), 2),
                "decode_tokens_per_s_p50": round(statistics.median(decode), 1),
                "tokens_generated_p50": statistics.median(generated),
                "rss_gib": round(rss / 2**30, 2),
                "bf16": bool(getattr(services.generator, "bf16", False)),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
