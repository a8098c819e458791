"""Would the reranker's score make a good citation gate? (no; docs/answers.md)

    .venv/bin/python bench/citation_gate.py [--seed 0] [--limit 80] [--held-back-limit 30] [--records F]

Answers the SQuAD dev questions through the shipped app (adapter, reranker, same plan as
``python -m rag.eval answers --no-base``), and for every answer also scores each of its sources
with the app's cross-encoder. It then replays candidate gates on those records: a citation is
dropped when its source scores under a floor, or more than a margin under the best source, and
an answer left with no citation counts as the abstention ("no quotes" also refuses the app's
quoted-sentence fallback). It also replays a gate on the sentence each citation highlights,
scored against every sentence of the sources. It prints token-F1, answered share, citation
precision and correct abstention per gate; the replay is exact, since the gate acts after
generation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.squad_replay import Outcome, recorded, squad_app, tally


def replay(
    records: list[dict[str, Any]],
    floor: float | None,
    margin: float | None,
    no_quotes: bool,
    sentence_margin: float | None = None,
) -> dict[str, float]:
    """The answers' figures had the gate been applied. ``sentence_margin`` gates on the
    sentence each citation highlights instead: dropped when it scores more than this under the
    best-scoring sentence of all the sources.

    >>> r = dict(indexed=True, abstained=False, f1=1.0, extractive=False, src_ce=[0.9, 0.2],
    ...          cited=[{"n": 2, "has_answer": False}], cite_sent_ce={"2": 0.3}, sent_ce_max=0.9)
    >>> replay([r], None, None, False)["citation_precision"], replay([r], 0.5, None, False)["answered"]
    (0.0, 0.0)
    >>> replay([r], None, None, False, sentence_margin=0.1)["answered"]
    0.0
    """

    def gated(r: dict[str, Any]) -> Outcome:
        abstained, cited = r["abstained"], list(r["cited"])
        if not abstained:
            ce = r["src_ce"]
            keep = [] if no_quotes and r["extractive"] else cited
            keep = [c for c in keep if floor is None or ce[c["n"] - 1] >= floor]
            keep = [c for c in keep if margin is None or ce[c["n"] - 1] >= max(ce) - margin]
            if sentence_margin is not None:
                best = r["sent_ce_max"]
                keep = [c for c in keep if r["cite_sent_ce"][str(c["n"])] >= best - sentence_margin]
            abstained, cited = not keep, keep
        return r["indexed"], abstained, r["f1"], cited

    return tally(gated(r) for r in records)


def collect(args: argparse.Namespace) -> list[dict[str, Any]]:
    from rag.cite import split_sentences
    from rag.eval.answer_metrics import contains_answer
    from rag.eval.answers import score

    with squad_app(args) as (p, services, _generator):
        pipeline = services.pipeline
        if pipeline.reranker is None:
            raise SystemExit("The reranker is off (RAG_RERANKER_MODEL=none): nothing to gate with.")
        out: list[dict[str, Any]] = []
        for q in p.questions:
            stream = pipeline.stream(q.question)
            raw = "".join(stream).strip()
            answer = stream.answer
            assert answer is not None
            rec = asdict(score("adapter", q, raw, answer, pipeline.template.abstain, 0))
            texts = [s.chunk.text for s in answer.sources]
            rec["src_ce"] = pipeline.reranker.score(q.question, texts) if texts else []
            rec["src_has"] = [contains_answer(t, q.answers) for t in texts]
            rec["extractive"] = answer.extractive
            # the sentence each citation highlights (the claim's evidence), and every source sentence
            rec["cite_sent_ce"] = {
                str(c.n): pipeline.reranker.score(q.question, [c.chunk.text[c.highlight[0] : c.highlight[1]]])[0]
                for c in answer.citations
            }
            sents = [t[a:b] for t in texts for a, b in split_sentences(t)]
            rec["sent_ce_max"] = max(pipeline.reranker.score(q.question, sents)) if sents else 0.0
            out.append(rec)
        return out


def main() -> int:
    records = recorded(collect)
    gates = [(None, None, False), (0.3, None, False), (None, 0.1, False), (None, 0.15, False), (None, 0.1, True)]
    for floor, margin, no_quotes in gates:
        name = f"floor {floor}, margin {margin}, no quotes {no_quotes}"
        print(json.dumps({"gate": name, **replay(records, floor, margin, no_quotes)}))
    if records and "cite_sent_ce" in records[0]:  # records that scored the highlighted sentences
        for sm in (0.1, 0.3):
            print(json.dumps({"gate": f"sentence margin {sm}", **replay(records, None, None, False, sm)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
