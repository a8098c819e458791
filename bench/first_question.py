"""First-question latency in a fresh process, the way `make run` starts the app.

    .venv/bin/python bench/first_question.py [--home DIR] [--json FILE] [QUESTION]

Indexes samples/ into DIR if it is empty, then times, from process start: services ready
(embedder, reranker, Chroma), pipeline ready (the generator from the converted-model cache,
warmed up: what the chat page's "Loading the language model" spinner covers), the first
question's first streamed token and full checked answer, and then the same for a second
question, so that what the first question still pays for a cold process shows. Prints one
JSON line (and writes it to ``--json``; ``make bench-first-question``:
results/bench-first-question.json).
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
    p.add_argument("--second", default="How tall is the Eiffel Tower?", help="the question asked next")
    p.add_argument("--home", type=Path, default=Path(tempfile.mkdtemp(prefix="grounded-bench-")))
    p.add_argument("--json", type=Path, help="also write the JSON object to this file")
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
    pipeline = services.pipeline  # loads the generator and warms it up
    t_pipeline = time.perf_counter()
    out: dict[str, object] = {
        "services_ready_s": round(t_services - T_START, 2),
        "pipeline_ready_s": round(t_pipeline - t_services, 2),
    }
    for name, question in (("first", args.question), ("second", args.second)):
        t0 = time.perf_counter()
        stream = pipeline.stream(question)
        first = None
        for _piece in stream:
            if first is None:
                first = time.perf_counter()
        t_done = time.perf_counter()
        answer = stream.answer
        assert answer is not None
        out[name] = {
            "question": question,
            "answer": answer.text,
            "abstained": answer.abstained,
            "first_token_s": round((first or t_done) - t0, 2),
            "answer_s": round(t_done - t0, 2),
            "timings_ms": answer.timings_ms,
        }
        if name == "first":
            out["first_answer_from_process_start_s"] = round(t_done - T_START, 2)
    print(json.dumps(out))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
