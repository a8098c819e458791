"""Tokens for the BM25 index, by the language of each text (a chunk or a query), detected on its own.

- English (and any Latin-script text): lower-case words, Lucene's English stopwords dropped,
  Snowball-stemmed, so "running" matches "runs".
- Korean: Kiwi's morphological analysis keeps content morphemes and drops particles and
  endings, so "에펠탑은" ("the Eiffel Tower" + topic particle) matches "에펠탑이".

Tokens are computed once per chunk at ingest and stored in the registry as one string
(:func:`tokens_to_str`); :mod:`rag.sparse` indexes them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal

Language = Literal["en", "ko"]

_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_LETTER = re.compile(r"[^\W\d_]")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)
# Kiwi tags kept for retrieval: nouns, numerals, verb/adjective stems, roots, foreign words,
# numbers, hanja. Particles (J*), endings (E*), suffixes (XS*) and punctuation are dropped.
_KO_KEEP = ("NNG", "NNP", "NNB", "NR", "NP", "VV", "VA", "XR", "SL", "SN", "SH", "MAG")


def detect_language(text: str) -> Language:
    """'ko' when at least 30% of the letters are Hangul, else 'en'.

    >>> detect_language("The tower was completed in 1889.")
    'en'
    >>> detect_language("에펠탑은 1889년에 완공되었다.")
    'ko'
    """
    if _HANGUL.search(text) is None:  # the common case, one scan and no lists
        return "en"
    letters = len(_LETTER.findall(text))
    hangul = len(_HANGUL.findall(text))
    return "ko" if hangul / letters >= 0.3 else "en"


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


_kiwi_lock = threading.Lock()


@lru_cache(maxsize=1)
def _kiwi() -> Any:
    from kiwipiepy import Kiwi

    return Kiwi()


def tokenize_en(text: str) -> list[str]:
    """Lower-cased, stopwords removed, Snowball-stemmed words.

    >>> tokenize_en("The towers in Paris are running!")
    ['tower', 'pari', 'run']
    """
    stop = _stopwords()
    words = [w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in stop]
    return list(_stemmer().stemWords(words))


def tokenize_ko(text: str) -> list[str]:
    """Korean content morphemes (Kiwi); Latin words inside go through the English tokeniser.

    >>> tokenize_ko("에펠탑은 파리에 있다")
    ['에펠탑', '파리', '있']
    """
    with _kiwi_lock:  # Kiwi objects are not documented as thread-safe
        morphs = _kiwi().tokenize(text)
    out: list[str] = []
    for m in morphs:
        tag = str(m.tag).split("-")[0]  # Kiwi marks irregular conjugations as e.g. "VV-I"
        if tag not in _KO_KEEP:
            continue
        if tag == "SL":
            out.extend(tokenize_en(m.form))
        else:
            out.append(m.form.lower())
    return out


def tokenize(text: str, language: Language | None = None) -> list[str]:
    """Tokens for BM25, by the text's own language.

    >>> tokenize("Stemming matches plural nouns")
    ['stem', 'match', 'plural', 'noun']
    """
    lang = language or detect_language(text)
    return tokenize_ko(text) if lang == "ko" else tokenize_en(text)


def tokens_to_str(tokens: Sequence[str]) -> str:
    """Stored form of a token list (tokens never contain whitespace)."""
    return " ".join(tokens)
