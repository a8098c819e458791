"""Pure answer metrics: SQuAD v1.1 normalisation, token-F1, exact match, and the checks the
answer evaluation and the LoRA data builder share (does a passage hold a gold answer?).

The normalisation is the official SQuAD v1.1 evaluation script's: lower-case, drop
punctuation and the articles a/an/the, collapse whitespace. Citation markers ``[n]`` are
removed first, so ``"1889 [2]."`` scores like ``"1889"``.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

from rag.cite import MARKER

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation (citation markers removed first).

    >>> normalize_answer("The  Eiffel Tower, in 1889 [2].")
    'eiffel tower in 1889'
    """
    text = MARKER.sub(" ", text).lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def token_f1(prediction: str, gold: str) -> float:
    """Harmonic mean of token precision and recall over normalised tokens (SQuAD's F1).

    >>> round(token_f1("It was the Denver Broncos [1].", "Denver Broncos"), 3)
    0.667
    >>> token_f1("Paris", "London")
    0.0
    """
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


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
