"""Pure answer metrics: SQuAD v1.1 normalisation, token-F1, exact match, and the checks the
answer evaluation and the LoRA data builder share (does a passage hold a gold answer?).

The normalisation is the official SQuAD v1.1 evaluation script's: lower-case, drop
punctuation and the articles a/an/the, collapse whitespace. Citation markers ``[n]`` are
removed first, so ``"1889 [2]."`` scores like ``"1889"``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

# The SQuAD normalisation and token-F1 live with the app's second-reading check, which uses
# them to compare two answers; re-exported here for the metrics' callers.
from rag.confirm import normalize_answer as normalize_answer
from rag.confirm import token_f1 as token_f1


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when the normalised texts are equal.

    >>> exact_match("Denver Broncos [1].", "the Denver Broncos")
    1.0
    >>> exact_match("Broncos", "Denver Broncos")
    0.0
    """
    return float(normalize_answer(prediction) == normalize_answer(gold))


def best_over_golds(metric_values: Iterable[float]) -> float:
    """SQuAD scores a prediction against each gold answer and keeps the best (0 when none).

    >>> best_over_golds([0.2, 0.8]), best_over_golds([])
    (0.8, 0.0)
    """
    return max(metric_values, default=0.0)


def f1_score(prediction: str, golds: Sequence[str]) -> float:
    """Token-F1 against the closest of several gold answers.

    >>> f1_score("1889 [1].", ["in 1887", "1889"])
    1.0
    """
    return best_over_golds(token_f1(prediction, g) for g in golds)


def em_score(prediction: str, golds: Sequence[str]) -> float:
    """Exact match against any of several gold answers.

    >>> em_score("Denver Broncos [1].", ["Broncos", "Denver Broncos"])
    1.0
    """
    return best_over_golds(exact_match(prediction, g) for g in golds)


def contains_answer(passage: str, golds: Sequence[str]) -> bool:
    """True when some non-empty gold answer appears in the passage as whole words: either as
    written (case aside) or after SQuAD normalisation of both.

    >>> contains_answer("Work ended in 1889, in Paris.", ["1889"])
    True
    >>> contains_answer("John Paul II's visits", ["John Paul II"])  # normalised, "II's" would be "iis"
    True
    >>> contains_answer("It has 18,890 parts.", ["1889"])
    False
    >>> contains_answer("anything", [""])
    False
    """
    text = f" {normalize_answer(passage)} "
    for gold in golds:
        if not gold.strip():
            continue
        if re.search(rf"(?<!\w){re.escape(gold.strip())}(?!\w)", passage, re.IGNORECASE):
            return True
        norm = normalize_answer(gold)
        if norm and f" {norm} " in text:
            return True
    return False


def mean(values: Sequence[float]) -> float | None:
    """Arithmetic mean, or None for no values (so a report can say 'n/a' instead of 0).

    >>> mean([1.0, 0.0]), mean([])
    (0.5, None)
    """
    return sum(values) / len(values) if values else None
