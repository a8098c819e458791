"""How the answer evaluation scores: one pipeline answer to a :class:`Record` (F1, exact match,
citations, abstention, latency), a variant's records to the report's figures, and those figures
against the adapter's targets."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.cite import marker_numbers
from rag.eval.answer_metrics import contains_answer, em_score, f1_score, mean
from rag.eval.answer_plan import EvalQuestion

# The adapter's targets (checked and printed after the table).
TARGETS = {"citation_precision": 0.9, "correct_abstention": 0.8, "f1_gain_over_base": 0.10}


@dataclass
class Record:
    """One question answered by one variant."""

    variant: str
    qid: str
    indexed: bool
    question: str
    answers: tuple[str, ...]
    raw: str  # what the model streamed
    text: str  # the final answer after the app's checks
    abstained: bool
    raw_abstained: bool  # the model itself wrote the abstention phrase (or was never asked)
    asked: bool  # False: retrieval found nothing relevant and the app abstained without the model
    cited: list[dict[str, Any]]  # [{"n", "source", "has_answer"}]
    f1: float
    em: float
    contains: bool  # the final answer holds a gold answer (SQuAD normalisation)
    evidence: bool  # a source given to the model holds a gold answer
    first_token_ms: float | None
    decode_ms: float | None
    new_tokens: int


def score(variant: str, q: EvalQuestion, raw: str, answer: Any, abstain: str, new_tokens: int) -> Record:
    """Turn one pipeline answer (:class:`rag.types.Answer`) into a :class:`Record`."""
    from rag.pipeline import is_abstention

    cited = [
        {"n": c.n, "source": Path(c.chunk.source).name, "has_answer": contains_answer(c.chunk.text, q.answers)}
        for c in answer.citations
    ]
    t = answer.timings_ms
    first = t.get("first_token")
    decode = t["generate"] - first if first is not None and "generate" in t else None
    answered = not answer.abstained
    return Record(
        variant=variant, qid=q.qid, indexed=q.indexed, question=q.question, answers=q.answers, raw=raw,
        text=answer.text, abstained=answer.abstained, raw_abstained=not raw.strip() or is_abstention(raw, abstain),
        asked=first is not None, cited=cited,
        f1=f1_score(answer.text, q.answers) if answered else 0.0,
        em=em_score(answer.text, q.answers) if answered else 0.0,
        contains=answered and contains_answer(answer.text, q.answers),
        evidence=any(contains_answer(s.chunk.text, q.answers) for s in answer.sources),
        first_token_ms=first, decode_ms=decode, new_tokens=new_tokens,
    )  # fmt: skip


def summarise(records: Sequence[Record]) -> dict[str, float | int | None]:
    """The report's figures for one variant (None where nothing was there to measure).

    >>> r = dict(variant="v", question="?", raw="1889 [1].", text="1889 [1].", raw_abstained=False,
    ...          asked=True, first_token_ms=200.0, decode_ms=500.0, new_tokens=6)
    >>> good = Record(qid="1", indexed=True, answers=("1889",), abstained=False,
    ...               cited=[{"n": 1, "source": "a.txt", "has_answer": True}], f1=1.0, em=1.0, contains=True,
    ...               evidence=True, **r)
    >>> silent = Record(qid="2", indexed=False, answers=("x",), abstained=True, cited=[], f1=0.0, em=0.0,
    ...                 contains=False, evidence=False, **r)
    >>> s = summarise([good, silent])
    >>> s["f1"], s["citation_precision"], s["correct_abstention"], s["hallucination"], s["tokens_per_s_p50"]
    (1.0, 1.0, 1.0, 0.0, 10.0)
    """
    ans = [r for r in records if r.indexed]
    held = [r for r in records if not r.indexed]
    answered = [r for r in ans if not r.abstained]
    cites = [c["has_answer"] for r in answered for c in r.cited]
    raw_answered = [r for r in ans if not r.raw_abstained]
    ttft = [r.first_token_ms for r in records if r.first_token_ms is not None]
    speeds = [(r.new_tokens - 1) / (r.decode_ms / 1000) for r in records
              if r.decode_ms and r.decode_ms > 0 and r.new_tokens > 1]  # fmt: skip
    return {
        "questions_indexed": len(ans),
        "f1": mean([r.f1 for r in ans]),
        "em": mean([r.em for r in ans]),
        "contains_answer": mean([float(r.contains) for r in ans]),
        "answered": mean([float(not r.abstained) for r in ans]),
        "refused": mean([float(r.abstained) for r in ans]),
        "evidence_shown": mean([float(r.evidence) for r in ans]),
        "refused_with_evidence": mean([float(r.abstained) for r in ans if r.evidence]),
        "citation_precision": mean([float(c) for c in cites]),
        # of every answer shown (held-back questions included): holds the gold answer and cites a
        # passage that holds it
        "shown_right": mean(
            [
                float(r.indexed and r.contains and any(c["has_answer"] for c in r.cited))
                for r in records
                if not r.abstained
            ]
        ),
        "citation_rate": mean([float(bool(marker_numbers(r.raw))) for r in raw_answered]),
        "questions_held_back": len(held),
        "correct_abstention": mean([float(r.abstained) for r in held]),
        "hallucination": mean([float(not r.abstained) for r in held]),
        "hallucination_raw": mean([float(not r.raw_abstained) for r in held]),
        "held_back_not_asked": mean([float(not r.asked) for r in held]),
        "ttft_ms_p50": _median(ttft),
        "ttft_ms_mean": mean(ttft),
        "tokens_per_s_p50": _median(speeds),
        "new_tokens_mean": mean([float(r.new_tokens) for r in records if r.first_token_ms is not None]),
    }


def _median(values: Sequence[float]) -> float | None:
    """The median (statistics.median), None for no values.

    >>> _median([3.0, 1.0, 2.0]), _median([4.0, 1.0]), _median([])
    (2.0, 2.5, None)
    """
    return statistics.median(values) if values else None


def target_checks(variants_: dict[str, dict[str, Any]]) -> list[tuple[str, bool | None]]:
    """The adapter's targets -> [(description, met; None if not measurable)].

    >>> v = {"base": {"f1": 0.2}, "adapter": {"f1": 0.35, "citation_precision": 0.95, "correct_abstention": 0.7}}
    >>> [ok for _, ok in target_checks(v)]
    [True, False, True]
    """
    a, b = variants_.get("adapter"), variants_.get("base")
    if a is None:
        return []

    def at_least(v: float | None, t: float) -> bool | None:
        return None if v is None else v >= t

    gain = a["f1"] - b["f1"] if b and a.get("f1") is not None and b.get("f1") is not None else None
    return [
        (f"citation precision >= {TARGETS['citation_precision']}", at_least(a.get("citation_precision"),
                                                                           TARGETS["citation_precision"])),
        (f"correct abstention >= {TARGETS['correct_abstention']}", at_least(a.get("correct_abstention"),
                                                                           TARGETS["correct_abstention"])),
        (f"token-F1 >= base + {TARGETS['f1_gain_over_base']:.2f}", at_least(gain, TARGETS["f1_gain_over_base"])),
    ]  # fmt: skip
