"""What the answer evaluation asks and indexes: the SQuAD articles split into indexed and held-back
ones (seeded), the questions sampled from each side, and the indexed paragraphs written out as
``<Article>__<n>.txt`` files, named as in the LoRA adapter's training prompts."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.eval.datasets import SquadArticle, SquadQuestion, datasets_dir
from rag.train.lora_passages import paragraph_file_name, paragraph_index

DEFAULT_SQUAD = datasets_dir() / "squad-v1.1" / "dev-v1.1-first40.json"


@dataclass(frozen=True)
class EvalQuestion:
    qid: str
    title: str
    question: str
    answers: tuple[str, ...]
    indexed: bool  # False: the article is held back (the right reply is the abstention)


@dataclass(frozen=True)
class Plan:
    indexed: list[SquadArticle]
    held_back: list[SquadArticle]
    questions: list[EvalQuestion]


def plan(articles: Sequence[SquadArticle], held_back: int, limit: int, held_limit: int, seed: int = 0) -> Plan:
    """Choose the held-back articles (seeded) and sample the questions: ``limit`` from the
    indexed articles and ``held_limit`` from the held-back ones (0 = all of them).

    >>> arts = [SquadArticle(f"A{i}", ()) for i in range(8)]
    >>> p = plan(arts, 2, 0, 0)
    >>> len(p.indexed), len(p.held_back), {a.title for a in p.indexed} & {a.title for a in p.held_back}
    (6, 2, set())
    """
    if held_back >= len(articles):
        raise ValueError(f"--held-back {held_back} leaves no article to index (the file has {len(articles)}).")
    titles = sorted(a.title for a in articles)
    random.Random(seed).shuffle(titles)
    out_titles = set(titles[:held_back])
    indexed = [a for a in articles if a.title not in out_titles]
    held = [a for a in articles if a.title in out_titles]

    def questions(arts: Sequence[SquadArticle], n: int, is_indexed: bool) -> list[EvalQuestion]:
        qs: list[tuple[str, SquadQuestion]] = [(a.title, q) for a in arts for p in a.paragraphs for q in p.questions]
        if n and n < len(qs):
            qs = random.Random(seed).sample(qs, n)
        return [EvalQuestion(q.qid, t, q.question, q.answers, is_indexed) for t, q in qs]

    return Plan(indexed, held, questions(indexed, limit, True) + questions(held, held_limit, False))


def write_articles(articles: Sequence[SquadArticle], folder: Path) -> int:
    """One .txt file per paragraph, named as in the LoRA training prompts -> files written."""
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for a in articles:
        for p in a.paragraphs:
            (folder / paragraph_file_name(a.title, paragraph_index(p.pid))).write_text(p.context + "\n", "utf-8")
            n += 1
    return n
