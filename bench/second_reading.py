"""Which second reading tells a misread answer from a good one? (session 11; docs/answers.md)

    .venv/bin/python bench/second_reading.py [--seed 0] [--limit 80] [--held-back-limit 30] [--records F]

Answers the SQuAD dev questions of ``python -m rag.eval answers --no-base`` through the shipped
app's pieces (sources as the app picks them, the adapter, the app's citation check) with the
second reading switched off, and asks each question again over other views of the evidence:

- ``rev``: the same sources in reverse order (what ``RAG_SECOND_READING`` does);
- ``all`` / ``allrev``: every top-k source, no margin cut, in order and reversed;
- ``next2``: for a single source, the next-best one put in front of it;
- ``cited_only``: only the passages the first answer cited.

It then replays rules on the records: the first answer is kept only when every view of the
rule agrees with it (``rag.confirm.readings_agree``, or stricter forms: equal text, token-F1
alone, a common cited passage alone), else it counts as the abstention. It prints token-F1,
answered share, citation precision and correct abstention per rule. With ``--records`` an
existing file is replayed without asking again.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

RULES: dict[str, list[str]] = {
    "none (first reading only)": [],
    "rev": ["rev"],
    "all": ["all"],
    "allrev": ["allrev"],
    "next2": ["next2"],
    "cited_only": ["cited_only"],
    "rev + next2": ["rev", "next2"],
    "rev + cited_only": ["rev", "cited_only"],
}
AGREEMENTS = ("readings_agree", "same text", "token-F1 >= 0.5", "common cited passage")


def agree(first: dict[str, Any], other: dict[str, Any] | None, how: str) -> bool:
    """Does ``other`` (a view's answer record) confirm ``first``? A missing view confirms.

    >>> a = {"text": "In 1889 [1].", "cited": [{"id": "c1"}], "abstained": False}
    >>> b = {"text": "It was 1889 [2].", "cited": [{"id": "c1"}], "abstained": False}
    >>> agree(a, b, "readings_agree"), agree(a, b, "same text"), agree(a, None, "same text")
    (True, False, True)
    """
    from rag.confirm import normalize_answer, readings_agree, token_f1

    if other is None:
        return True
    if other["abstained"]:
        return False
    ids_a, ids_b = {c["id"] for c in first["cited"]}, {c["id"] for c in other["cited"]}
    if how == "readings_agree":
        return readings_agree(first["text"], ids_a, other["text"], ids_b)
    if how == "same text":
        return normalize_answer(first["text"]) == normalize_answer(other["text"])
    if how == "token-F1 >= 0.5":
        return token_f1(first["text"], other["text"]) >= 0.5
    return bool(ids_a & ids_b)


def replay(records: list[dict[str, Any]], views: list[str], how: str) -> dict[str, float]:
    """The figures had the first answer been kept only when every view agrees with it.

    >>> good = {"text": "1889 [1].", "cited": [{"id": "a", "has_answer": True}], "abstained": False, "f1": 1.0}
    >>> bad = {"text": "1887 [1].", "cited": [{"id": "b", "has_answer": False}], "abstained": False, "f1": 0.0}
    >>> recs = [{"indexed": True, "views": {"orig": good, "rev": good}},
    ...         {"indexed": True, "views": {"orig": bad, "rev": good}}]
    >>> replay(recs, [], "readings_agree")["citation_precision"], replay(recs, ["rev"], "readings_agree")
    (0.5, {'f1': 0.5, 'answered': 0.5, 'citation_precision': 1.0, 'citations': 1, 'correct_abstention': 0.0})
    """
    f1: list[float] = []
    answered: list[float] = []
    cites: list[float] = []
    held: list[float] = []
    for r in records:
        first = r["views"]["orig"]
        abstained = first is None or first["abstained"]
        if not abstained:
            abstained = not all(agree(first, r["views"].get(v), how) for v in views)
        if r["indexed"]:
            f1.append(0.0 if abstained else first["f1"])
            answered.append(float(not abstained))
            cites += [] if abstained else [float(c["has_answer"]) for c in first["cited"]]
        else:
            held.append(float(abstained))
    return {
        "f1": round(mean(f1), 3) if f1 else 0.0,
        "answered": round(mean(answered), 3) if answered else 0.0,
        "citation_precision": round(mean(cites), 3) if cites else 0.0,
        "citations": len(cites),
        "correct_abstention": round(mean(held), 3) if held else 0.0,
    }


def collect(args: argparse.Namespace) -> list[dict[str, Any]]:
    from rag.config import Settings
    from rag.embed import SentenceTransformerEmbedder
    from rag.eval.answer_metrics import contains_answer, f1_score
    from rag.eval.answers import plan, write_articles
    from rag.eval.datasets import read_squad, split_articles
    from rag.generate import TransformersGenerator
    from rag.prompting import build_messages
    from rag.services import Services
    from rag.types import ScoredChunk

    base = Settings()
    home = Path(tempfile.mkdtemp(prefix="grounded-second-reading-"))
    settings = base.model_copy(update={"home": home, "model_cache": base.model_cache_dir, "second_reading": False})
    no_margin = settings.model_copy(update={"source_margin": 0.0})
    try:
        p = plan(split_articles(read_squad(args.squad))[1], 2, args.limit, args.held_back_limit, args.seed)
        folder = settings.home_dir / "squad"
        write_articles(p.indexed, folder)
        generator = TransformersGenerator(settings)
        services = Services(settings, embedder=SentenceTransformerEmbedder(settings), generator=generator)
        services.indexer.ingest_paths([folder])
        pipeline = services.pipeline

        def read(question: str, golds: tuple[str, ...], scored: list[ScoredChunk]) -> dict[str, Any]:
            chunks = [s.chunk for s in scored]
            messages = build_messages(question, chunks, pipeline.template, settings.max_source_chars)
            t0 = time.perf_counter()
            raw = "".join(generator.stream(messages))
            a = pipeline.finish(question, raw, scored)
            return {
                "raw": raw, "text": a.text, "abstained": a.abstained, "extractive": a.extractive,
                "cited": [{"id": c.chunk.id, "has_answer": contains_answer(c.chunk.text, golds)} for c in a.citations],
                "f1": 0.0 if a.abstained else f1_score(a.text, golds), "seconds": time.perf_counter() - t0,
            }  # fmt: skip

        out: list[dict[str, Any]] = []
        for q in p.questions:
            scored = pipeline.sources(q.question)
            pipeline.settings = no_margin
            full = pipeline.sources(q.question)
            pipeline.settings = settings
            views: dict[str, Any] = {"orig": read(q.question, q.answers, scored) if scored else None}
            if len(scored) > 1:
                views["rev"] = read(q.question, q.answers, scored[::-1])
            if len(full) > len(scored):
                views["all"] = read(q.question, q.answers, full)
                views["allrev"] = read(q.question, q.answers, full[::-1])
            if len(scored) == 1 and len(full) > 1:
                views["next2"] = read(q.question, q.answers, [full[1], full[0]])
            first = views["orig"]
            if first and not first["abstained"] and len(scored) > 1:
                ids = {c["id"] for c in first["cited"]}
                views["cited_only"] = read(q.question, q.answers, [s for s in scored if s.chunk.id in ids])
            out.append({"qid": q.qid, "indexed": q.indexed, "question": q.question, "answers": list(q.answers),
                        "sources": len(scored), "views": views})  # fmt: skip
        return out
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> int:
    from rag.eval.answers import DEFAULT_SQUAD

    p = argparse.ArgumentParser()
    p.add_argument("--squad", type=Path, default=DEFAULT_SQUAD)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=80)
    p.add_argument("--held-back-limit", type=int, default=30)
    p.add_argument("--records", type=Path, help="write the records (JSON lines) here; or read them if it exists")
    args = p.parse_args()
    if args.records and args.records.is_file():
        records = [json.loads(line) for line in args.records.read_text().splitlines()]
    else:
        records = collect(args)
        if args.records:
            args.records.write_text("".join(json.dumps(r) + "\n" for r in records))
    for how in AGREEMENTS:
        for name, views in RULES.items():
            print(json.dumps({"agreement": how, "views": name, **replay(records, views, how)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
