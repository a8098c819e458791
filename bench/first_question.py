"""First-question latency in a fresh process, the way `make run` starts the app.

    .venv/bin/python bench/first_question.py [--home DIR] [QUESTION]

Indexes samples/ into DIR if it is empty, then times, from process start: services ready
(embedder + Chroma), generator ready (converted model from the cache), first streamed
token, and the full checked answer. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

T_START = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("question", nargs="?", default="When was the Eiffel Tower completed?")
    p.add_argument("--home", type=Path, default=Path(tempfile.mkdtemp(prefix="grounded-bench-")))
    args = p.parse_args()
    os.environ.setdefault("RAG_MODEL_CACHE", str(Path(".cache/models").resolve()))
    from rag.config import REPO_ROOT, Settings
    from rag.services import Services

    settings = Settings(home=args.home)
    services = Services(settings)
    if services.registry.stats()["documents"] == 0:
        t = time.perf_counter()
        results = services.indexer.ingest_paths([REPO_ROOT / "samples"])
        chunks = sum(r.embedded for r in results)
        print(f"indexed {chunks} sample chunks in {time.perf_counter() - t:.2f} s", file=sys.stderr)
    t_services = time.perf_counter()
    _ = services.generator
    t_generator = time.perf_counter()
    stream = services.pipeline.stream(args.question)
    first = None
    for _piece in stream:
        if first is None:
            first = time.perf_counter()
    t_done = time.perf_counter()
    answer = stream.answer
    assert answer is not None
    print(
        json.dumps(
            {
                "question": args.question,
                "answer": answer.text,
                "abstained": answer.abstained,
                "services_ready_s": round(t_services - T_START, 2),
                "generator_ready_s": round(t_generator - t_services, 2),
                "first_token_s": round((first or t_done) - t_generator, 2),
                "answer_s": round(t_done - t_generator, 2),
                "total_from_process_start_s": round(t_done - T_START, 2),
                "timings_ms": answer.timings_ms,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
