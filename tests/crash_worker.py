"""A separate process for the crash and cross-process tests (tests/integration/test_crash_safety.py).

    python -m tests.crash_worker HOME ingest PATH...   index files (slowly, so it can be killed mid-way)
    python -m tests.crash_worker HOME reindex          rebuild everything into a new generation
    python -m tests.crash_worker HOME verify NAME...   print a JSON health report, then reconcile

Uses the fake engines (deterministic across processes) and a real Chroma under HOME.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rag.interfaces import Vectors
from rag.services import Services
from tests.conftest import make_settings
from tests.fakes import EchoGenerator, HashEmbedder


class SlowEmbedder(HashEmbedder):
    """Takes a while per batch so a kill lands in the middle of real work."""

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        time.sleep(0.06 * len(texts))
        return super().embed_documents(texts)


def services(home: Path) -> Services:
    settings = make_settings(home, chunk_tokens=40, chunk_overlap_tokens=5)
    return Services(settings, embedder=SlowEmbedder(), generator=EchoGenerator())


def answerable(s: Services, name: str) -> bool:
    """The document named ``name`` is registered, all its chunks are in Chroma, and searching
    with one of its passages finds that passage first."""
    store = s.indexer.reader_store()
    docs = [d for d in s.registry.documents() if Path(d.source).name == name]
    if len(docs) != 1:
        return False
    ids = sorted(s.registry.chunk_ids(docs[0].doc_id))
    chunks = store.get(ids)
    if not ids or len(chunks) != len(ids):
        return False
    probe = chunks[len(chunks) // 2]
    top = store.search(s.embedder.embed_query(probe.text), 1)
    return bool(top) and top[0].chunk.id == probe.id


def verify(s: Services, names: list[str]) -> dict[str, object]:
    idx = s.indexer
    before = {"missing": idx.missing_chunks()}  # registry-listed chunks absent from Chroma: must be 0
    found = {n: answerable(s, n) for n in names}
    removed = idx.reconcile()
    store = idx.active_store()
    leftovers = [n for n in s.catalog.names() if n != store.name]
    return {
        **before,
        "removed": removed,
        "documents": sorted(d.source for d in s.registry.documents()),
        "registry_chunks": len(s.registry.chunk_ids()),
        "chroma_chunks": store.count(),
        "leftover_collections": leftovers,
        "answerable": found,
    }


def main(argv: list[str]) -> int:
    home, command, *rest = argv
    s = services(Path(home))
    if command == "ingest":
        results = s.indexer.ingest_paths([Path(p) for p in rest])
        return 1 if any(r.status == "failed" for r in results) else 0
    if command == "reindex":
        s.indexer.reindex()
        return 0
    if command == "verify":
        print(json.dumps(verify(s, rest)))
        return 0
    print(f"unknown command {command}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
