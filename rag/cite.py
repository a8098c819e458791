"""Pure: find [n] markers in an answer, drop the ones that point nowhere, map them to chunks.

The answer keeps the numbers the generator saw (source n in the prompt is [n] in the answer),
so what the user reads under the answer is exactly what the model was shown.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.types import Chunk, Citation

# [1]  [1, 2]  [1,2,3]  [Source 1]  [source 2, 3]
MARKER = re.compile(r"\[(?:[Ss]ources?\s*)?(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
# A sentence ends at . ! ? before a capital/digit, or at a blank line; a single newline is
# only line wrapping (PDF text is full of those).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])|\n[ \t]*\n\s*")
_WORD = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "and",
        "or",
        "is",
        "was",
        "were",
        "are",
        "be",
        "been",
        "by",
        "with",
        "as",
        "from",
        "that",
        "this",
        "it",
        "its",
        "which",
        "who",
        "what",
        "when",
        "where",
        "how",
        "why",
        "did",
        "does",
        "do",
        "has",
        "have",
        "had",
        "not",
        "no",
    ]
)


def marker_numbers(text: str) -> list[int]:
    """Every cited number in order of appearance (repeats kept).

    >>> marker_numbers("Paris [1]. Built 1889 [2, 3]. See [Source 4].")
    [1, 2, 3, 4]
    """
    return [int(n) for m in MARKER.finditer(text) for n in m.group(1).split(",")]


def clean_markers(text: str, n_sources: int) -> str:
    """Normalise markers to ``[n]`` and remove numbers outside 1..n_sources.

    >>> clean_markers("A [1, 9]. B [Source 2]. C [7].", 2)
    'A [1]. B [2]. C.'
    """

    def fix(m: re.Match[str]) -> str:
        nums = [int(n) for n in m.group(1).split(",")]
        keep = [n for n in dict.fromkeys(nums) if 1 <= n <= n_sources]
        return "".join(f"[{n}]" for n in keep)

    out = MARKER.sub(fix, text)
    out = re.sub(r"[ \t]+([.,;:!?])", r"\1", out)  # "C [7]." -> "C ." -> "C."
    return re.sub(r"[ \t]{2,}", " ", out).strip()


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences in ``text``.

    >>> t = "It opened in 1889. It is 330 m tall."
    >>> [t[s:e] for s, e in split_sentences(t)]
    ['It opened in 1889.', 'It is 330 m tall.']
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        if text[start : m.start()].strip():
            spans.append((start, m.start()))
        start = m.end()
    if text[start:].strip():
        spans.append((start, len(text.rstrip())))
    return spans


def content_words(text: str) -> set[str]:
    """Lower-cased word set without stop words.

    >>> sorted(content_words("The tower was completed in 1889 [1]."))
    ['1', '1889', 'completed', 'tower']
    """
    return {w.lower() for w in _WORD.findall(text)} - _STOP


def best_span(passage: str, claim: str) -> tuple[int, int]:
    """The sentence of ``passage`` sharing the most content words with ``claim`` (whole passage if none).

    >>> p = "Work began in 1887. The tower was completed in 1889. It is iron."
    >>> s, e = best_span(p, "It was completed in 1889 [1].")
    >>> p[s:e]
    'The tower was completed in 1889.'
    """
    target = content_words(MARKER.sub(" ", claim))
    best, best_score = (0, len(passage)), 0.0
    for s, e in split_sentences(passage):
        words = content_words(passage[s:e])
        if not words:
            continue
        score = len(words & target) / (len(words) ** 0.5)
        if score > best_score:
            best, best_score = (s, e), score
    return best


def citations_for(answer: str, sources: Sequence[Chunk]) -> list[Citation]:
    """One :class:`Citation` per distinct cited source, in order of first mention.

    ``answer`` must already be cleaned (every number in 1..len(sources)).
    """
    claims: dict[int, list[str]] = {}
    for s, e in split_sentences(answer):
        sentence = answer[s:e]
        for n in marker_numbers(sentence):
            claims.setdefault(n, []).append(sentence)
    out: list[Citation] = []
    for n, sentences in claims.items():
        if 1 <= n <= len(sources):
            chunk = sources[n - 1]
            out.append(Citation(n=n, chunk=chunk, highlight=best_span(chunk.text, " ".join(sentences))))
    return out


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def numbers(text: str) -> set[str]:
    """Numbers as written, thousands separators removed.

    >>> sorted(numbers("About 18,038 parts and 2.5 million rivets [1]"))
    ['1', '18038', '2.5']
    """
    return {m.group().replace(",", "") for m in _NUMBER.finditer(text)}


# Negation is not in the word overlap (stop words), so it is checked apart: "The tower was not
# completed in 1889" shares every other word with a passage saying it was.
_NEGATION = re.compile(r"\b(?:not|no|never|nor|none|cannot|neither)\b|n[’']t\b", re.IGNORECASE)


def support(sentence: str, passage: str, question: str = "") -> float:
    """How well ``passage`` backs ``sentence``: the share of the sentence's new content words
    (those not already in the question) found in the passage; 0 if any number in the
    sentence is missing from the passage, if the sentence negates and the passage never does,
    if the sentence adds nothing to the question, or if the words it adds stand in the passage
    away from the question's (:func:`anchored`: "Cairns" is in a passage about the reef, not in
    one about Australia's capital).

    >>> p = "The tower was completed in 1889 for the World's Fair."
    >>> support("It was completed in 1889.", p, "When was the tower completed?")
    1.0
    >>> support("It was completed in 1887.", p, "When was the tower completed?")
    0.0
    >>> support("When was the tower completed?", p, "When was the tower completed?")
    0.0
    >>> support("The tower was not completed in 1889.", p, "When was the tower completed?")
    0.0
    >>> reef = "The reef lies off Queensland. Tourists reach it from towns such as Cairns and Port Douglas."
    >>> support("Cairns [2].", reef, "What is the capital of Australia?")
    0.0
    """
    claim = MARKER.sub(" ", sentence)
    if not numbers(claim) <= numbers(passage):
        return 0.0
    if _NEGATION.search(claim) and not _NEGATION.search(passage):
        return 0.0
    asked = content_words(question)
    new = content_words(claim) - asked
    if not new:
        return 0.0
    if asked and not anchored(new, asked, passage):
        return 0.0
    return len(new & content_words(passage)) / len(new)


# Share of the question's content words that must stand near the claim's new words. Chosen on
# claims built from the SQuAD train-side articles (30,533 pairs, rag/train/claim_data.py):
# balanced accuracy 0.716 with no anchoring, 0.740 at 0.15, 0.744 at 0.25, 0.739 at 0.34, 0.720
# at 0.5; at 0.25, 28% of other spans of the right paragraph given as the answer are refused
# (5% before) and 6% of right answers (1% before). Dev figures: docs/quality.md.
_ANCHOR_SHARE = 0.25


def anchored(new: set[str], asked: set[str], passage: str) -> bool:
    """Whether the passage sentence holding most of ``new`` (with the sentences either side of
    it) also holds at least a quarter of ``asked``.

    >>> p = "Work began in 1887. Many years later, in 1889, the tower was completed."
    >>> anchored({"1889"}, {"tower", "completed"}, p), anchored({"1887"}, {"tower", "completed"}, p + " It is tall.")
    (True, True)
    >>> far = "Work began in 1887. It rained. Then it snowed. The tower was completed."
    >>> anchored({"1887"}, {"tower", "completed"}, far)
    False
    """
    spans = split_sentences(passage) or [(0, len(passage))]
    words = [content_words(passage[s:e]) for s, e in spans]
    best = max(range(len(words)), key=lambda i: len(words[i] & new))
    near = set().union(*words[max(0, best - 1) : best + 2])
    return len(asked & near) >= _ANCHOR_SHARE * len(asked)


def verify_answer(
    answer: str,
    sources: Sequence[Chunk],
    question: str = "",
    min_support: float = 0.5,
) -> tuple[str, list[str]]:
    """Keep the sentences some source backs, each ending with a marker of a source that backs it.

    A source backs a sentence when :func:`support` is ``min_support`` or more. A cited
    sentence keeps its markers when one of the cited sources backs it; otherwise, and for
    unmarked sentences, the best-backing source is attached. Sentences no source backs are
    dropped and returned separately, so the user can be told what was removed.

    >>> src = [Chunk("a", "d", "f.txt", None, 0, 40, "The tower was completed in 1889 in Paris.")]
    >>> verify_answer("It was completed in 1889. It has 46,000 rivets [1].", src, "When?")
    ('It was completed in 1889 [1].', ['It has 46,000 rivets [1].'])
    """
    sentences = [answer[s:e].strip() for s, e in split_sentences(answer)]
    matrix = [[support(s, c.text, question) for c in sources] for s in sentences]
    kept: list[str] = []
    dropped: list[str] = []
    for sentence, scores in zip(sentences, matrix, strict=True):
        cited = [n for n in dict.fromkeys(marker_numbers(sentence)) if 1 <= n <= len(sources)]
        if any(scores[n - 1] >= min_support for n in cited):
            kept.append(sentence)
            continue
        best = max(range(len(scores)), key=scores.__getitem__, default=-1)
        if best < 0 or scores[best] < min_support:
            dropped.append(sentence)
            continue
        body = re.sub(r"\s+([.,;:!?])", r"\1", MARKER.sub("", sentence))
        kept.append(with_marker(body, best + 1))
    return " ".join(kept), dropped


def extract_answer(question: str, sources: Sequence[Chunk], min_overlap: float = 0.6) -> str | None:
    """Fallback when nothing generated survives verification: quote the source sentence that
    shares the most content words with the question, if it shares at least ``min_overlap`` of
    them (and at least two, for questions with two or more), and adds something new.

    >>> src = [Chunk("a", "d", "f.txt", None, 0, 60, "Work began in 1887. The tower was completed in 1889.")]
    >>> extract_answer("When was the tower completed?", src)
    'The tower was completed in 1889 [1].'
    >>> extract_answer("Who won the football world cup?", src) is None
    True
    """
    q = content_words(question)
    if not q:
        return None
    best: tuple[float, int, str] = (0.0, 0, "")
    for n, chunk in enumerate(sources, start=1):
        for s, e in split_sentences(chunk.text):
            sentence = " ".join(chunk.text[s:e].split())
            words = content_words(sentence)
            shared = len(q & words)
            if shared < min(2, len(q)) or not words - q:
                continue  # a heading or a restatement of the question answers nothing
            score = shared / len(q)
            if score > best[0]:
                best = (score, n, sentence)
    score, n, sentence = best
    if score < min_overlap:
        return None
    return with_marker(sentence, n)


def with_marker(sentence: str, n: int) -> str:
    """Put ``[n]`` before the sentence's final punctuation.

    >>> with_marker("It opened in 1889.", 2)
    'It opened in 1889 [2].'
    >>> with_marker("It opened in 1889", 2)
    'It opened in 1889 [2]'
    """
    body = sentence.rstrip()
    stop = len(body) - len(body.rstrip(".!?"))
    return f"{body[: len(body) - stop]} [{n}]{body[len(body) - stop :]}"
