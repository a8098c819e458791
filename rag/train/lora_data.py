"""Grounded-answer examples for the LoRA adapter, built by our own code from SQuAD v1.1.

Each example is what the app's generator sees and what it should write:

- the prompt: 3-6 numbered passages, rendered with the app's own template
  (:func:`rag.prompting.build_messages`, prompts/answer.md) exactly as at inference. The
  passages are the gold paragraph plus distractors that our own hybrid retriever
  (:func:`rag.train.data.mine`) ranks high for the question, in random positions; each is
  named ``<Article>__<paragraph>.txt``, as the app shows a file it ingested;
- the target: the gold answer span followed by the gold passage's marker, e.g.
  ``"Denver Broncos [2]."`` (the span is copied from the passage, so the app's citation
  check keeps it), or, for about a quarter of the questions, the gold paragraph is left out
  and the target is the fixed abstention phrase from prompts/abstain.md.

Articles never cross splits: examples for a split are built from that split's articles only,
distractors included (the corpus mined for distractors is the split's own paragraphs).

This module picks the questions and each prompt's passages; :mod:`rag.train.lora_passages` names a
paragraph's file, cuts it to fit and writes its target.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rag.eval.answer_metrics import contains_answer
from rag.eval.datasets import SquadArticle, SquadParagraph, SquadQuestion
from rag.interfaces import Embedder
from rag.prompting import PromptTemplate, build_messages
from rag.train.lora_passages import (
    article_of,
    checked_target,
    clip,
    distractor_chunk,
    paragraph_chunk,
    paragraph_file_name,
    pick_answer,
)
from rag.types import Chunk

# Passages per prompt and how often each count is drawn. The app shows RAG_TOP_K=4 sources,
# so 3-4 dominate; 5-6 teach the model that the gold passage can sit anywhere in a longer list.
PASSAGE_WEIGHTS: dict[int, float] = {3: 0.35, 4: 0.4, 5: 0.15, 6: 0.1}


@dataclass(frozen=True)
class GroundedExample:
    """One training (or quick-check) example: the numbered sources, the question, the target."""

    qid: str
    title: str  # the question's article
    question: str
    answers: tuple[str, ...]  # SQuAD gold answers
    sources: tuple[Chunk, ...]  # numbered 1..n in this order
    gold: int  # 1-based number of the gold passage; 0 when it was left out (abstention)
    target: str

    @property
    def abstains(self) -> bool:
        return self.gold == 0

    def messages(self, template: PromptTemplate, max_source_chars: int) -> list[dict[str, str]]:
        """The chat messages the app would send for these sources and this question."""
        return build_messages(self.question, list(self.sources), template, max_source_chars)

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @staticmethod
    def from_json(d: dict[str, Any]) -> GroundedExample:
        return GroundedExample(
            qid=str(d["qid"]),
            title=str(d["title"]),
            question=str(d["question"]),
            answers=tuple(d["answers"]),
            sources=tuple(Chunk(**c) for c in d["sources"]),
            gold=int(d["gold"]),
            target=str(d["target"]),
        )


def write_jsonl(examples: Sequence[GroundedExample], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for ex in examples:
            fh.write(json.dumps(ex.to_json(), ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> list[GroundedExample]:
    with open(path, encoding="utf-8") as fh:
        return [GroundedExample.from_json(json.loads(line)) for line in fh if line.strip()]


def leaks(examples: Sequence[GroundedExample], titles: Sequence[str]) -> set[str]:
    """The ``titles`` that appear in ``examples``, as a question's article or as any passage.

    >>> c = Chunk("x", "0-1", "Oxygen__1.txt", None, 0, 1, "O")
    >>> ex = GroundedExample("q", "Geology", "?", ("a",), (c,), 0, "No.")
    >>> sorted(leaks([ex], ["Oxygen", "Geology", "Doctor_Who"]))
    ['Geology', 'Oxygen']
    """
    seen = {ex.title for ex in examples} | {article_of(c.source) for ex in examples for c in ex.sources}
    return {t for t in titles if t in seen or paragraph_file_name(t, 0).rsplit("__", 1)[0] in seen}


def draw_passage_count(rng: random.Random, weights: dict[int, float] = PASSAGE_WEIGHTS) -> int:
    """How many passages the next prompt gets.

    >>> draw_passage_count(random.Random(0)) in PASSAGE_WEIGHTS
    True
    """
    counts = sorted(weights)
    return rng.choices(counts, weights=[weights[c] for c in counts])[0]


# --- building -----------------------------------------------------------------------------


def pick_questions(paragraphs: Sequence[SquadParagraph], n: int, rng: random.Random) -> list[tuple[int, SquadQuestion]]:
    """``n`` (paragraph index, question) pairs, spread over paragraphs: every paragraph gives
    one question before any gives a second, so the examples cover the whole corpus.

    >>> ps = [SquadParagraph(f"0-{i}", "T", "c", (SquadQuestion(f"q{i}a", "?", ("x",)),
    ...       SquadQuestion(f"q{i}b", "?", ("y",)))) for i in range(3)]
    >>> sorted(i for i, _ in pick_questions(ps, 4, random.Random(0)))
    [0, 0, 1, 2]
    """
    pools = [list(p.questions) for p in paragraphs]
    for pool in pools:
        rng.shuffle(pool)
    order = list(range(len(paragraphs)))
    out: list[tuple[int, SquadQuestion]] = []
    for round_ in range(max((len(p) for p in pools), default=0)):
        rng.shuffle(order)
        out += [(pi, pools[pi][round_]) for pi in order if round_ < len(pools[pi])]
        if len(out) >= n:
            break
    return out[:n]


def choose_sources(
    gold: int | None,
    ranking: Sequence[int],
    paragraphs: Sequence[SquadParagraph],
    k: int,
    rng: random.Random,
    exclude: set[int],
) -> list[int]:
    """Paragraph indices for one prompt: the gold one (unless None) plus distractors drawn from
    the top of the question's ranking (skipping ``exclude``), shuffled into random positions.
    When the ranking runs short, random paragraphs fill up.

    >>> ps = [SquadParagraph(f"0-{i}", "T", "c", ()) for i in range(9)]
    >>> picked = choose_sources(4, [4, 1, 2, 3, 5, 6], ps, 3, random.Random(0), {4})
    >>> len(picked), 4 in picked, len(set(picked))
    (3, True, 3)
    """
    need = k - (gold is not None)
    pool = [i for i in ranking if i != gold and i not in exclude]
    # Mostly the very top, as retrieval would show, with a little variety.
    distractors = rng.sample(pool[: need + 2], min(need, len(pool[: need + 2])))
    if len(distractors) < need:
        rest = [i for i in range(len(paragraphs)) if i != gold and i not in exclude and i not in distractors]
        distractors += rng.sample(rest, min(need - len(distractors), len(rest)))
    picked = distractors + ([gold] if gold is not None else [])
    rng.shuffle(picked)
    return picked


def build_examples(
    paragraphs: Sequence[SquadParagraph],
    questions: Sequence[tuple[int, SquadQuestion]],
    rankings: Sequence[Sequence[int]],
    template: PromptTemplate,
    max_chars: int,
    abstain_share: float = 0.25,
    seed: int = 0,
) -> list[GroundedExample]:
    """Turn questions (with each one's retrieval ranking over ``paragraphs``) into examples.

    Abstention examples leave out the gold paragraph and every passage holding a gold
    answer; half of them also leave out the gold paragraph's whole article, as when the
    question is about a document nobody indexed. Questions whose answer cannot be placed in
    the passage (or whose target the citation check would reject) are skipped.
    """
    rng = random.Random(seed)
    by_title: dict[str, set[int]] = {}
    for i, p in enumerate(paragraphs):
        by_title.setdefault(p.title, set()).add(i)
    out: list[GroundedExample] = []
    for (pi, q), ranking in zip(questions, rankings, strict=True):
        para = paragraphs[pi]
        k = draw_passage_count(rng)
        if rng.random() < abstain_share:
            exclude = {i for i in ranking if contains_answer(paragraphs[i].context, q.answers)} | {pi}
            if rng.random() < 0.5:
                exclude |= by_title[para.title]
            picked = choose_sources(None, ranking, paragraphs, k, rng, exclude)
            sources = tuple(distractor_chunk(paragraphs[i], max_chars) for i in picked)
            if any(contains_answer(c.text, q.answers) for c in sources):
                continue  # a filler passage happens to hold the answer: not an abstention
            out.append(GroundedExample(q.qid, para.title, q.question, q.answers, sources, 0, template.abstain))
            continue
        answer = pick_answer(q.answers)
        at = para.context.find(answer)
        if not answer or at < 0:
            continue
        picked = choose_sources(pi, ranking, paragraphs, k, rng, set())
        chunks = []
        for i in picked:
            if i == pi:
                s, e = clip(para.context, at, at + len(answer), max_chars)
                chunks.append(paragraph_chunk(para, s, e))
            else:
                chunks.append(distractor_chunk(paragraphs[i], max_chars))
        gold = picked.index(pi) + 1
        span_at = at - chunks[gold - 1].start  # the answer's offset inside the shown slice
        if chunks[gold - 1].text[span_at : span_at + len(answer)] != answer:
            continue
        target = checked_target(q.question, answer, chunks, gold, span_at)
        if target is None:
            continue
        out.append(GroundedExample(q.qid, para.title, q.question, q.answers, tuple(chunks), gold, target))
    return out


def build_split(
    articles: Sequence[SquadArticle],
    n_questions: int,
    embedder: Embedder,
    template: PromptTemplate,
    max_chars: int,
    abstain_share: float = 0.25,
    seed: int = 0,
    mine_depth: int = 40,
) -> list[GroundedExample]:
    """Examples for one side of the article split, mined within that side only (so nothing of
    the other side, not even a distractor, appears). About ``n_questions`` examples come back
    (a few questions are skipped, see :func:`build_examples`)."""
    from rag.train.data import mine

    rng = random.Random(seed)
    paragraphs = [p for a in articles for p in a.paragraphs]
    questions = pick_questions(paragraphs, n_questions, rng)
    rankings = mine([q.question for _, q in questions], [p.context for p in paragraphs], embedder, mine_depth)
    return build_examples(paragraphs, questions, rankings, template, max_chars, abstain_share, seed)


def build_unanswerable(
    articles: Sequence[SquadArticle],
    n_questions: int,
    embedder: Embedder,
    template: PromptTemplate,
    max_chars: int,
    seed: int = 0,
    mine_depth: int = 20,
) -> list[GroundedExample]:
    """Abstention examples from SQuAD 2.0's unanswerable questions (read with
    :func:`rag.eval.datasets.read_squad`, which gives them no answers): the question's own
    paragraph, written to look as if it answered, plus distractors our retriever ranks high, and
    the abstention phrase as the target. These are the hard cases: the passage is on the topic
    and holds look-alike facts, and only reading it shows that the answer is not there."""
    from rag.train.data import mine

    rng = random.Random(seed)
    paragraphs = [p for a in articles for p in a.paragraphs]
    pairs = [(pi, q) for pi, p in enumerate(paragraphs) for q in p.questions if not q.answers]
    rng.shuffle(pairs)
    pairs = pairs[:n_questions]
    rankings = mine([q.question for _, q in pairs], [p.context for p in paragraphs], embedder, mine_depth)
    out = []
    for (pi, q), ranking in zip(pairs, rankings, strict=True):
        picked = choose_sources(pi, ranking, paragraphs, draw_passage_count(rng), rng, set())
        sources = tuple(distractor_chunk(paragraphs[i], max_chars) for i in picked)
        out.append(GroundedExample(q.qid, paragraphs[pi].title, q.question, (), sources, 0, template.abstain))
    return out
