"""Readers for the evaluation and training data in ../shared/datasets (BEIR folders, SQuAD v1.1).

Pure file reading; nothing is fetched. The folder is ``$GROUNDED_DATASETS`` when set, else
``shared/datasets`` beside the repository (:func:`datasets_dir`); a missing file raises
:class:`DatasetMissing`, whose message names the path and how to point at the data. Shapes:

- BEIR: ``corpus`` {doc_id: BeirDoc}, ``queries`` {query_id: text},
  ``qrels`` {query_id: {doc_id: grade}} (grade > 0 means relevant).
- SQuAD: a list of :class:`SquadArticle`, each with paragraphs and their questions.
"""

from __future__ import annotations

import csv
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

Qrels = dict[str, dict[str, int]]


DATASETS_ENV = "GROUNDED_DATASETS"


class DatasetMissing(FileNotFoundError):
    """A dataset file or folder is not where it was looked for; the message says how to fix it."""


def datasets_dir() -> Path:
    """Where the read-only datasets live: ``$GROUNDED_DATASETS`` when set, else ``shared/datasets``
    beside the repository (``REPO_ROOT.parent / "shared" / "datasets"``). Not checked here: the
    default paths of the command lines are built from it at import; the readers check.

    >>> import os
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {DATASETS_ENV: "/data/sets"}):
    ...     str(datasets_dir())
    '/data/sets'
    """
    import os

    from rag.config import REPO_ROOT

    env = os.environ.get(DATASETS_ENV, "")
    return Path(env).expanduser() if env else REPO_ROOT.parent / "shared" / "datasets"


def require(path: Path, what: str) -> Path:
    """``path`` when it exists, else :class:`DatasetMissing` naming it and the two fixes.

    >>> require(Path("/no/such/nfcorpus"), "a BEIR folder")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    rag.eval.datasets.DatasetMissing: /no/such/nfcorpus is missing (a BEIR folder). Put the datasets ...
    """
    path = Path(path)
    if not path.exists():
        raise DatasetMissing(
            f"{path} is missing ({what}). Put the datasets (nfcorpus/, squad-v1.1/, squad-v2.0/) in "
            f"{datasets_dir()}, set {DATASETS_ENV} to the folder that holds them, or pass the file or "
            "folder on the command line (--beir, --squad, --nfcorpus)."
        )
    return path


@dataclass(frozen=True)
class BeirDoc:
    doc_id: str
    title: str
    text: str

    @property
    def full_text(self) -> str:
        """What gets indexed: the title, a blank line, the text."""
        return f"{self.title}\n\n{self.text}".strip() if self.title else self.text.strip()


@dataclass(frozen=True)
class Beir:
    corpus: dict[str, BeirDoc]
    queries: dict[str, str]
    qrels: Qrels


def read_beir(folder: Path, split: str = "test") -> Beir:
    """Read a BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv. Only queries with at
    least one relevant document in the split are returned."""
    folder = require(Path(folder), "a BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    qrels_path = folder / "qrels" / f"{split}.tsv"
    for need in (folder / "corpus.jsonl", folder / "queries.jsonl", qrels_path):
        require(need, "a BEIR folder has corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    corpus: dict[str, BeirDoc] = {}
    with open(folder / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                d = json.loads(line)
                corpus[str(d["_id"])] = BeirDoc(str(d["_id"]), d.get("title") or "", d.get("text") or "")
    qrels = read_qrels(qrels_path)
    queries: dict[str, str] = {}
    with open(folder / "queries.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                q = json.loads(line)
                if str(q["_id"]) in qrels:
                    queries[str(q["_id"])] = q["text"]
    qrels = {q: r for q, r in qrels.items() if q in queries}
    return Beir(corpus, queries, qrels)


def read_qrels(path: Path) -> Qrels:
    """query-id, corpus-id, score (tab-separated, with a header). Grades <= 0 are dropped."""
    out: Qrels = {}
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if len(row) < 3 or not row[2].strip().lstrip("-").isdigit():
                continue  # header or blank line
            grade = int(row[2])
            if grade > 0:
                out.setdefault(row[0], {})[row[1]] = grade
    return out


def safe_doc_name(doc_id: str) -> str:
    """File name (without suffix) for a corpus document; reversible via the mapping kept by callers.

    >>> safe_doc_name("MED-10")
    'MED-10'
    >>> safe_doc_name("a/b c")
    'a_b_c'
    """
    return re.sub(r"[^A-Za-z0-9_.-]", "_", doc_id)


# --- SQuAD ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SquadQuestion:
    qid: str
    question: str
    answers: tuple[str, ...]  # gold answer spans, as written in the paragraph


@dataclass(frozen=True)
class SquadParagraph:
    pid: str  # "<article index>-<paragraph index>"
    title: str
    context: str
    questions: tuple[SquadQuestion, ...]


@dataclass(frozen=True)
class SquadArticle:
    title: str
    paragraphs: tuple[SquadParagraph, ...]


def read_squad(path: Path) -> list[SquadArticle]:
    """SQuAD v1.1 JSON (official format) -> articles with their paragraphs and questions."""
    data = json.loads(require(Path(path), "a SQuAD JSON file").read_text(encoding="utf-8"))
    articles = []
    for ai, art in enumerate(data["data"]):
        paras = []
        for pi, p in enumerate(art["paragraphs"]):
            qs = tuple(
                SquadQuestion(str(q["id"]), q["question"].strip(), tuple(a["text"] for a in q["answers"]))
                for q in p["qas"]
            )
            paras.append(SquadParagraph(f"{ai}-{pi}", art["title"], p["context"], qs))
        articles.append(SquadArticle(art["title"], tuple(paras)))
    return articles


def split_articles(
    articles: Sequence[SquadArticle], dev_fraction: float = 0.2, seed: int = 13
) -> tuple[list[SquadArticle], list[SquadArticle]]:
    """Split by article (never by question), reproducibly: -> (train, dev). The same seed always
    gives the same split, so the reranker, the LoRA adapter and the evaluations agree on it.

    >>> arts = [SquadArticle(f"A{i}", ()) for i in range(10)]
    >>> train, dev = split_articles(arts, 0.2)
    >>> len(train), len(dev), set(a.title for a in train) & set(a.title for a in dev)
    (8, 2, set())
    """
    titles = sorted({a.title for a in articles})
    random.Random(seed).shuffle(titles)
    n_dev = max(1, round(len(titles) * dev_fraction)) if len(titles) > 1 else 0
    dev_titles = set(titles[:n_dev])
    return [a for a in articles if a.title not in dev_titles], [a for a in articles if a.title in dev_titles]
