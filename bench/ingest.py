"""Ingest throughput: Grounded's ingest against the textbook LangChain pipeline, same run.

    .venv/bin/python bench/ingest.py [--docs N] [--corpus ../shared/datasets/nfcorpus] [--json FILE]

Both index the same .txt files (exported from a BEIR corpus) with the same MiniLM model:

- baseline: the textbook LangChain ingest: read the files, RecursiveCharacterTextSplitter
  (character-based, ~200-token chunks), a HuggingFaceEmbeddings-equivalent wrapper (plain
  fp32 ``SentenceTransformer.encode``, its defaults) and ``langchain_chroma.Chroma.from_documents``.
  (langchain-huggingface itself needs huggingface-hub<2, which conflicts with transformers 5
  here; its HuggingFaceEmbeddings is exactly this call.)
- grounded: ``Indexer.ingest_paths`` as `python -m ingest` runs it (parse thread, cross-file
  batches, bf16 where the CPU has it, registry, stored copies, Chroma).

Prints one JSON object: chunks, seconds and chunks/s for each side pooled over ``--rounds``
rounds run in ABBA order, the pooled ratio and each round's ratio (each round's figures also go
to stderr as they come), and writes it to ``--json`` too (``make bench-ingest``:
results/bench-ingest.json). Model loading is excluded from both timings.
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


def export(corpus: Path, out: Path, n: int) -> list[Path]:
    import subprocess

    subprocess.run(
        [sys.executable, str(Path(__file__).parent / "export_corpus.py"), str(corpus), str(out), "--limit", str(n)],
        check=True,
        capture_output=True,
    )
    return sorted(out.glob("*.txt"))


def textbook_splits(files: list[Path]) -> list[Any]:
    """The textbook pipeline's chunks: each file read whole, then RecursiveCharacterTextSplitter."""
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    docs = [Document(page_content=f.read_text(encoding="utf-8"), metadata={"source": str(f)}) for f in files]
    # ~200 MiniLM tokens is ~800-1000 characters of English prose
    return RecursiveCharacterTextSplitter(chunk_size=900, chunk_overlap=180).split_documents(docs)


def baseline(files: list[Path], home: Path) -> dict[str, float]:
    from langchain_chroma import Chroma
    from langchain_core.embeddings import Embeddings
    from sentence_transformers import SentenceTransformer

    from rag.models import resolve_embedding_model

    class HFEmbeddings(Embeddings):
        """What langchain_huggingface.HuggingFaceEmbeddings does: model.encode, fp32, defaults."""

        def __init__(self) -> None:
            self.model = SentenceTransformer(resolve_embedding_model("packaged"), device="cpu")

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [list(map(float, v)) for v in self.model.encode(texts)]

        def embed_query(self, text: str) -> list[float]:
            return self.embed_documents([text])[0]

    emb = HFEmbeddings()
    t0 = time.perf_counter()
    splits = textbook_splits(files)
    Chroma.from_documents(splits, emb, persist_directory=str(home / "baseline"))
    seconds = time.perf_counter() - t0
    return {"chunks": len(splits), "seconds": round(seconds, 2), "chunks_per_s": round(len(splits) / seconds, 1)}


def grounded(files: list[Path], home: Path) -> dict[str, float]:
    from rag.config import Settings
    from rag.services import Services

    services = Services(Settings(home=home / "grounded", _env_file=None))  # type: ignore[call-arg]
    t0 = time.perf_counter()
    results = services.indexer.ingest_paths(files)
    services.sparse.wait_refreshed()  # the BM25 build it starts counts as ours (and must not overlap the baseline)
    seconds = time.perf_counter() - t0
    chunks = sum(r.embedded for r in results)
    return {
        "chunks": chunks,
        "seconds": round(seconds, 2),
        "chunks_per_s": round(chunks / seconds, 1),
        "bf16": bool(getattr(services.embedder, "bf16", False)),
    }


def pooled(runs: list[dict[str, float]]) -> dict[str, float]:
    """All rounds of one side together: total chunks over total seconds.

    >>> pooled([{"chunks": 100, "seconds": 2.0}, {"chunks": 100, "seconds": 3.0}])
    {'chunks': 200, 'seconds': 5.0, 'chunks_per_s': 40.0}
    """
    chunks = sum(int(r["chunks"]) for r in runs)
    seconds = round(sum(r["seconds"] for r in runs), 2)
    return {"chunks": chunks, "seconds": seconds, "chunks_per_s": round(chunks / seconds, 1)}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--docs", type=int, default=1000)
    p.add_argument("--corpus", type=Path, default=None, help="BEIR folder (default: NFCorpus in the datasets folder)")
    p.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="Rounds of both pipelines, in ABBA order (grounded, baseline, baseline, grounded, ...): "
        "this shared VM's speed drifts by tens of percent within minutes, so one pair can be off "
        "either way (measured: 1.83x and 2.68x in two back-to-back single-pair runs).",
    )
    p.add_argument("--json", type=Path, help="also write the JSON object to this file")
    args = p.parse_args()
    from rag.eval.datasets import datasets_dir

    corpus = args.corpus or datasets_dir() / "nfcorpus"
    sides = {"grounded": grounded, "baseline": baseline}
    runs: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory(prefix="grounded-bench-") as tmp:
        root = Path(tmp)
        files = export(corpus, root / "docs", args.docs)
        for i in range(args.rounds):
            for side in list(sides) if i % 2 == 0 else reversed(list(sides)):  # ABBA
                runs[side].append(sides[side](files, root / f"round{i}"))
                print(json.dumps({"round": i, side: runs[side][-1]}), file=sys.stderr)
    ours, base = runs["grounded"], runs["baseline"]
    ours_all, base_all = pooled(ours), pooled(base)
    ratios = [o["chunks_per_s"] / b["chunks_per_s"] for o, b in zip(ours, base, strict=True)]
    out = {
        "files": len(files),
        "corpus": str(corpus),
        "rounds": args.rounds,
        "baseline_langchain": base_all,
        "grounded": {**ours_all, "bf16": bool(ours[0]["bf16"])},
        "speedup": round(ours_all["chunks_per_s"] / base_all["chunks_per_s"], 2),
        "speedup_per_round": [round(r, 2) for r in ratios],
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(out))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
