"""Pure: (claim, passage, label) pairs for the claim checker, from SQuAD and the claim sets.

The checker reads what the app gives it at answer time: the question and one generated sentence
as the claim (:func:`claim_text`), the cited passage as the evidence. SQuAD turns into such pairs
(:func:`squad_pairs`), each question giving

- supported: its gold answer, bare ("April 1889"), against its own paragraph; and the paragraph
  sentence that holds the answer, as a sentence-shaped answer;
- unsupported: another span of the same paragraph as the answer (the "Cairns" case: the words
  are in the passage, they do not answer the question); the gold answer against a look-alike
  paragraph of the same article that does not hold it; the answer sentence negated
  (:func:`negate`) or with its answer swapped for another span.

SQuAD 2.0's unanswerable questions, with the plausible answer their writers marked, are
unsupported pairs written to look answerable (:func:`squad2_pairs`). The public claim and NLI
sets (:func:`nli_pairs`) add claims in other shapes: entailment is supported, neutral and
contradiction are not.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.cite import MARKER, split_sentences
from rag.eval.datasets import SquadArticle


def claim_text(question: str, sentence: str) -> str:
    """What the checker reads as the claim: the question, then the answer sentence without its
    citation markers, so that a bare answer ("Cairns") is judged as an answer to that question.

    >>> claim_text("What is the capital of Australia?", "Cairns [2].")
    'What is the capital of Australia? Cairns.'
    >>> claim_text("", "It opened in 1889 [1].")
    'It opened in 1889.'
    """
    body = re.sub(r"\s+([.,;:!?])", r"\1", MARKER.sub("", sentence)).strip()
    return " ".join(f"{question} {body}".split())


@dataclass(frozen=True)
class ClaimPair:
    question: str  # empty for the claim/NLI sets
    sentence: str  # the answer or claim itself
    passage: str
    label: int  # 1 = the passage backs the claim
    kind: str  # where it came from ("answer", "other_span", "negated", "mnli_dev", ...)

    @property
    def claim(self) -> str:
        """What the checker reads: :func:`claim_text`."""
        return claim_text(self.question, self.sentence)


_AUX = re.compile(
    r"\b(is|was|are|were|has|have|had|can|could|will|would|should|may|might|must|does|did|do)\b(?! not\b)",
    re.IGNORECASE,
)


def negate(sentence: str) -> str | None:
    """The sentence with "not" after its first auxiliary verb; None when it has none.

    >>> negate("The tower was completed in 1889.")
    'The tower was not completed in 1889.'
    >>> negate("Paris hosts the fair.") is None
    True
    """
    m = _AUX.search(sentence)
    if m is None:
        return None
    return f"{sentence[: m.end()]} not{sentence[m.end() :]}"


def answer_sentence(context: str, answer: str) -> str | None:
    """The sentence of ``context`` holding the first occurrence of ``answer``.

    >>> answer_sentence("Work began in 1887. It was completed in 1889. It is iron.", "1889")
    'It was completed in 1889.'
    """
    at = context.find(answer)
    if at < 0:
        return None
    for s, e in split_sentences(context):
        if s <= at < e:
            return " ".join(context[s:e].split())
    return None


def _differs(a: str, b: str) -> bool:
    """Neither span contains the other (case-folded): "1889" and "April 1889" do not differ."""
    a, b = a.lower().strip(" .,"), b.lower().strip(" .,")
    return bool(a and b) and a not in b and b not in a


def squad_pairs(articles: Sequence[SquadArticle], seed: int = 0, sentence_share: float = 0.5) -> list[ClaimPair]:
    """Claim pairs from SQuAD v1.1-shaped articles (see the module text); ``sentence_share`` of
    the questions also give the sentence-shaped pairs (as written, negated, answer swapped)."""
    rng = random.Random(seed)
    out: list[ClaimPair] = []
    for art in articles:
        for para in art.paragraphs:
            spans = [q.answers[0] for q in para.questions if q.answers]
            others = [p for p in art.paragraphs if p.pid != para.pid]
            for q in para.questions:
                if not q.answers:
                    continue
                gold = q.answers[0]
                out.append(ClaimPair(q.question, gold, para.context, 1, "answer"))
                wrong = [s for s in spans if all(_differs(s, g) for g in q.answers)]
                if wrong:
                    out.append(ClaimPair(q.question, rng.choice(wrong), para.context, 0, "other_span"))
                lookalike = [p for p in others if all(g.lower() not in p.context.lower() for g in q.answers)]
                if lookalike:
                    out.append(ClaimPair(q.question, gold, rng.choice(lookalike).context, 0, "lookalike"))
                sentence = answer_sentence(para.context, gold)
                if sentence is None or rng.random() >= sentence_share:
                    continue
                out.append(ClaimPair(q.question, sentence, para.context, 1, "sentence"))
                negated = negate(sentence)
                if negated is not None:
                    out.append(ClaimPair(q.question, negated, para.context, 0, "negated"))
                if wrong:
                    swapped = sentence.replace(gold, rng.choice(wrong), 1)
                    out.append(ClaimPair(q.question, swapped, para.context, 0, "swapped"))
    return out


def squad2_pairs(
    path: Path, keep_titles: Iterable[str] | None = None, drop_titles: Iterable[str] = ()
) -> list[ClaimPair]:
    """SQuAD 2.0: each unanswerable question with its plausible answer -> unsupported; each
    answerable one with its gold answer -> supported. Articles filtered by title."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    keep, drop = (set(keep_titles) if keep_titles is not None else None), set(drop_titles)
    out: list[ClaimPair] = []
    for art in data["data"]:
        if art["title"] in drop or (keep is not None and art["title"] not in keep):
            continue
        for p in art["paragraphs"]:
            for q in p["qas"]:
                if q.get("is_impossible"):
                    for a in q.get("plausible_answers", [])[:1]:
                        out.append(ClaimPair(q["question"], a["text"], p["context"], 0, "squad2_unanswerable"))
                elif q["answers"]:
                    out.append(ClaimPair(q["question"], q["answers"][0]["text"], p["context"], 1, "squad2_answer"))
    return out


NLI_SETS = ("mnli_dev", "snli_dev", "fever_dev", "scitail_test", "rte_test")
SUMMEDITS_DEV_DOMAINS = ("podcast", "sales_email")  # held out for our own figures, never trained on
_MAX_PREMISE_CHARS = 2000  # longer SummEdits documents would be cut at the checker's max length


def nli_pairs(folder: Path, name: str) -> list[ClaimPair]:
    """One ``claims/<name>.jsonl`` set: entailment -> 1, anything else -> 0."""
    out = []
    with open(Path(folder) / f"{name}.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                d = json.loads(line)
                out.append(
                    ClaimPair("", d["hypothesis"].strip(), d["premise"].strip(), int(d["label"] == "entailment"), name)
                )
    return out


def summedits_pairs(folder: Path, domains: Iterable[str]) -> list[ClaimPair]:
    """SummEdits documents (up to 2,000 characters) and summaries of these domains."""
    out = []
    for domain in domains:
        for d in json.loads((Path(folder) / "summedits" / f"summedits_{domain}.json").read_text(encoding="utf-8")):
            if len(d["doc"]) <= _MAX_PREMISE_CHARS:
                out.append(
                    ClaimPair("", d["summary"].strip(), d["doc"].strip(), int(d["label"] == 1), f"summedits_{domain}")
                )
    return out


def summedits_domains(folder: Path) -> list[str]:
    return sorted(p.stem.removeprefix("summedits_") for p in (Path(folder) / "summedits").glob("summedits_*.json"))


def hold_out(pairs: Sequence[ClaimPair], share: float, seed: int = 0) -> tuple[list[ClaimPair], list[ClaimPair]]:
    """Split pairs reproducibly -> (train, held out); ``share`` of them held out.

    >>> ps = [ClaimPair("", str(i), "p", i % 2, "x") for i in range(10)]
    >>> train, dev = hold_out(ps, 0.2)
    >>> len(train), len(dev), {p.claim for p in train} & {p.claim for p in dev}
    (8, 2, set())
    """
    idx = list(range(len(pairs)))
    random.Random(seed).shuffle(idx)
    n = round(len(pairs) * share)
    return [pairs[i] for i in idx[n:]], [pairs[i] for i in idx[:n]]


def balanced_accuracy(labels: Sequence[int], predicted: Sequence[int]) -> float:
    """Mean of the recall on supported and the recall on unsupported pairs.

    >>> balanced_accuracy([1, 1, 0, 0], [1, 0, 0, 0])
    0.75
    """
    rec = []
    for cls in (0, 1):
        idx = [i for i, y in enumerate(labels) if y == cls]
        if idx:
            rec.append(sum(predicted[i] == cls for i in idx) / len(idx))
    return sum(rec) / len(rec) if rec else 0.0
