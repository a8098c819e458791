"""What the answer benchmarks that record and replay share (bench/citation_gate.py,
bench/second_reading.py): their command line and records file, the shipped app over a fresh
index of the SQuAD dev articles, and the figures of a replayed rule."""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from statistics import mean
from typing import Any

# (indexed, abstained, token-F1 of the answer, its citations as {"has_answer": bool, ...})
Outcome = tuple[bool, bool, float, Sequence[Mapping[str, Any]]]


def tally(outcomes: Iterable[Outcome]) -> dict[str, float]:
    """Token-F1, answered share and citation precision over the indexed questions, correct
    abstention over the held-back ones (an abstention scores F1 0 and cites nothing).

    >>> tally([(True, False, 1.0, [{"has_answer": True}]), (True, True, 0.7, [{"has_answer": False}]),
    ...        (False, True, 0.0, [])])
    {'f1': 0.5, 'answered': 0.5, 'citation_precision': 1.0, 'citations': 1, 'correct_abstention': 1.0}
    """
    f1: list[float] = []
    answered: list[float] = []
    cites: list[float] = []
    held: list[float] = []
    for indexed, abstained, score, cited in outcomes:
        if indexed:
            f1.append(0.0 if abstained else score)
            answered.append(float(not abstained))
            cites += [] if abstained else [float(c["has_answer"]) for c in cited]
        else:
            held.append(float(abstained))
    return {
        "f1": round(mean(f1), 3) if f1 else 0.0,
        "answered": round(mean(answered), 3) if answered else 0.0,
        "citation_precision": round(mean(cites), 3) if cites else 0.0,
        "citations": len(cites),
        "correct_abstention": round(mean(held), 3) if held else 0.0,
    }


@contextmanager
def squad_app(args: argparse.Namespace, **update: Any) -> Iterator[tuple[Any, Any, Any]]:
    """The shipped app (settings from the environment, changed by ``update``) over a temporary
    index of the dev articles that ``python -m rag.eval answers`` indexes for ``args.seed``;
    yields (plan, services, generator) and deletes the index afterwards."""
    from rag.config import Settings
    from rag.embed import SentenceTransformerEmbedder
    from rag.eval.answers import plan, write_articles
    from rag.eval.datasets import read_squad, split_articles
    from rag.generate import TransformersGenerator
    from rag.services import Services

    base = Settings()
    home = Path(tempfile.mkdtemp(prefix="grounded-bench-answers-"))
    settings = base.model_copy(update={"home": home, "model_cache": base.model_cache_dir, **update})
    try:
        p = plan(split_articles(read_squad(args.squad))[1], 2, args.limit, args.held_back_limit, args.seed)
        folder = settings.home_dir / "squad"
        write_articles(p.indexed, folder)
        generator = TransformersGenerator(settings)
        services = Services(settings, embedder=SentenceTransformerEmbedder(settings), generator=generator)
        services.indexer.ingest_paths([folder])
        yield p, services, generator
    finally:
        shutil.rmtree(home, ignore_errors=True)


def recorded(collect: Callable[[argparse.Namespace], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Parse the shared command line (``--squad --seed --limit --held-back-limit --records``),
    then replay the records file when it exists, else ``collect`` them (and write the file)."""
    from rag.eval.answers import DEFAULT_SQUAD

    p = argparse.ArgumentParser()
    p.add_argument("--squad", type=Path, default=DEFAULT_SQUAD)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=80)
    p.add_argument("--held-back-limit", type=int, default=30)
    p.add_argument("--records", type=Path, help="write the records (JSON lines) here; or read them if it exists")
    args = p.parse_args()
    if args.records and args.records.is_file():
        return [json.loads(line) for line in args.records.read_text().splitlines()]
    out = collect(args)
    if args.records:
        args.records.write_text("".join(json.dumps(r) + "\n" for r in out))
    return out
