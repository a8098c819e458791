"""The first question after an ingest, with and without the background BM25 rebuild.

    .venv/bin/python bench/bm25_refresh.py [--home /tmp/grounded-bench-10k] [--pause 20]

Opens an existing index (by default the one `bench/answer.py` builds), then twice: ingests one
small new file, waits ``--pause`` seconds (a user reading the upload result), times one
retrieval and deletes the file again. The first round runs with the indexer's change hook off
(BM25 is rebuilt by that query, as before), the second with it on (rebuilt in the background
after the ingest). Prints one JSON object with the query's per-stage times.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "grounded-bench-10k")
    p.add_argument("--pause", type=float, default=20.0)
    args = p.parse_args()
    from rag.config import Settings
    from rag.services import Services

    s = Services(Settings(home=args.home, _env_file=None))  # type: ignore[call-arg]
    if s.registry.stats()["chunks"] == 0:
        raise SystemExit(f"{args.home} holds no index: run bench/answer.py first (it builds one).")
    question = "vitamin D and bone density in older women"
    s.sparse.index()  # built for the current version before we start
    out: dict[str, Any] = {"chunks": s.registry.stats()["chunks"]}
    hooks = {"refresh_off": None, "refresh_on": s.sparse.refresh_soon}
    with tempfile.TemporaryDirectory() as tmp:
        for label, hook in hooks.items():
            s.indexer.on_change = hook
            f = Path(tmp) / f"extra-{label}.txt"
            f.write_text(f"A note ({label}): calcium intake and fractures in elderly patients.\n", "utf-8")
            t = time.perf_counter()
            s.indexer.ingest_paths([f])
            ingest_s = time.perf_counter() - t
            time.sleep(args.pause)
            timings: dict[str, float] = {}
            t = time.perf_counter()
            s.retriever.retrieve(question, 30, None, timings)
            out[label] = {
                "ingest_s": round(ingest_s, 2),
                "first_query_ms": round((time.perf_counter() - t) * 1000),
                "stages_ms": {k: round(v) for k, v in timings.items()},
            }
            s.indexer.on_change = None
            doc = next(d for d in s.registry.documents() if d.source.endswith(f.name))
            s.indexer.delete(doc.doc_id)
    s.sparse.index()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
