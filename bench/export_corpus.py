"""Write documents from a BEIR corpus (e.g. ../shared/datasets/nfcorpus) as .txt files, to
benchmark ingest through the same path users take (`python -m ingest FOLDER`).

    .venv/bin/python bench/export_corpus.py ../shared/datasets/nfcorpus OUT_DIR [--limit N]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("beir_dir", type=Path)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--limit", type=int, default=500)
    args = p.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(args.beir_dir / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if n >= args.limit:
                break
            doc = json.loads(line)
            name = re.sub(r"[^A-Za-z0-9_-]", "_", doc["_id"])
            text = f"{doc.get('title', '')}\n\n{doc['text']}".strip()
            (args.out_dir / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
            n += 1
    print(f"wrote {n} documents to {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
