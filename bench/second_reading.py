"""Which second reading tells a misread answer from a good one? (docs/answers.md)

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
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.squad_replay import Outcome, recorded, squad_app, tally

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

    def kept(r: dict[str, Any]) -> Outcome:
        first = r["views"]["orig"]
        abstained = first is None or first["abstained"]
        if not abstained:
            abstained = not all(agree(first, r["views"].get(v), how) for v in views)
        return r["indexed"], abstained, first["f1"] if first else 0.0, first["cited"] if first else []

    return tally(kept(r) for r in records)


def collect(args: argparse.Namespace) -> list[dict[str, Any]]:
    from rag.eval.answer_metrics import contains_answer, f1_score
    from rag.prompting import build_messages
    from rag.types import ScoredChunk

    with squad_app(args, second_reading=False) as (p, services, generator):
        pipeline = services.pipeline
        settings = pipeline.settings
        no_margin = settings.model_copy(update={"source_margin": 0.0})

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


def main() -> int:
    records = recorded(collect)
    for how in AGREEMENTS:
        for name, views in RULES.items():
            print(json.dumps({"agreement": how, "views": name, **replay(records, views, how)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
