"""Second reading: is the answer the same when the generator reads the sources in another order?

A small generator is swayed by where a passage sits in the prompt: asked again with the same
sources reversed, it keeps a well-grounded answer but often changes one it misread from a
look-alike passage. The pipeline (:meth:`rag.pipeline.RagPipeline.confirm`) asks twice and
keeps the answer only when :func:`readings_agree`; otherwise it abstains and shows both drafts.
On three samples of SQuAD dev questions this raised citation precision from 0.83 to 0.92 pooled
(docs/answers.md).

The SQuAD v1.1 normalisation and token-F1 live here because the check compares two answers the
way SQuAD compares an answer with its gold one; :mod:`rag.eval.answer_metrics` re-exports them.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Collection

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


def readings_agree(
    first: str,
    first_cited: Collection[str],
    second: str,
    second_cited: Collection[str],
    min_f1: float = 0.5,
) -> bool:
    """True when two readings back the same answer: they cite a common passage (by chunk id,
    since the numbers differ between orders), or their texts share most words (token-F1 of at
    least ``min_f1``). An empty second text (the second reading abstained) never agrees.

    >>> readings_agree("It opened in 1889 [1].", {"c7"}, "In 1889 [2].", {"c7"})
    True
    >>> readings_agree("It opened in 1889 [1].", {"c7"}, "It opened in 1889 [3].", {"c2"})
    True
    >>> readings_agree("TEU article 16(4) [3].", {"c5"}, "TFEU article 294 [2].", {"c1"})
    False
    >>> readings_agree("In 1889 [1].", {"c7"}, "", set())
    False
    """
    if not second.strip():
        return False
    if set(first_cited) & set(second_cited):
        return True
    return token_f1(first, second) >= min_f1
