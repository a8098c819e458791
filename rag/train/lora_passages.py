"""One SQuAD paragraph as a grounded example shows it, and the answer it should get: the file the
app would have ingested it from, the slice around the answer that fits the prompt, and the target
(answer span or sentence with the passage's marker) that the app's citation check keeps."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from rag.cite import split_sentences, verify_answer, with_marker
from rag.eval.datasets import SquadParagraph
from rag.types import Chunk


def paragraph_file_name(title: str, index: int) -> str:
    """The file a SQuAD paragraph is ingested from (also used by the answer evaluation).

    >>> paragraph_file_name("Super_Bowl_50", 3)
    'Super_Bowl_50__3.txt'
    >>> paragraph_file_name("AC/DC: live", 0)
    'AC_DC_live__0.txt'
    """
    safe = re.sub(r"[^\w.-]+", "_", title, flags=re.UNICODE).strip("_") or "article"
    return f"{safe}__{index}.txt"


def article_of(file_name: str) -> str:
    """The (file-safe) article name of a file made by :func:`paragraph_file_name`.

    >>> article_of("Super_Bowl_50__3.txt")
    'Super_Bowl_50'
    """
    return file_name.rsplit("__", 1)[0]


def paragraph_index(pid: str) -> int:
    """The paragraph's position in its article, from a :class:`SquadParagraph` pid.

    >>> paragraph_index("12-7")
    7
    """
    return int(pid.rsplit("-", 1)[1])


def pick_answer(answers: Sequence[str]) -> str:
    """The gold answer most annotators gave; ties go to the shortest, then the first.

    >>> pick_answer(["Denver Broncos", "the Denver Broncos", "Denver Broncos"])
    'Denver Broncos'
    >>> pick_answer(["Santa Clara, California", "Levi's Stadium"])
    "Levi's Stadium"
    """
    cleaned = [a.strip() for a in answers if a.strip()]
    if not cleaned:
        return ""
    counts = Counter(cleaned)
    return min(cleaned, key=lambda a: (-counts[a], len(a), cleaned.index(a)))


def clip(text: str, start: int, end: int, max_chars: int) -> tuple[int, int]:
    """A slice of at most ``max_chars`` holding ``text[start:end]``: it begins at the earliest
    sentence start from which the slice still reaches past the span (keeping the most context
    before the answer) and ends on a word boundary. With ``start == end == 0``: the passage's opening.

    >>> t = "One two. Three four five. Six seven eight nine."
    >>> s, e = clip(t, t.index("seven"), t.index("seven") + 5, 24)
    >>> t[s:e]
    'Six seven eight nine.'
    >>> s, e = clip(t, 0, 0, 12)
    >>> t[s:e]
    'One two.'
    >>> clip(t, 0, 3, 100)
    (0, 47)
    """
    if len(text) <= max_chars:
        return 0, len(text)
    # Sentence starts at or before the span whose window still reaches past the span's end;
    # the first of them keeps the most context before the answer.
    starts = [0] + [m.end() for m in re.finditer(r"(?<=[.!?])\s+", text) if m.end() <= start]
    fitting = [s for s in starts if s <= start and s + max_chars >= end]
    s = fitting[0] if fitting else max(0, min(start, end - max_chars))
    e = min(len(text), s + max_chars)
    if e < len(text):  # cut on a word boundary, but never inside the span
        space = text.rfind(" ", max(end, s + 1), e + 1)
        e = space if space > 0 else e
    return s, e


def short_target(answer: str, n: int) -> str:
    """The answer span as written in the passage, then the gold passage's marker.

    >>> short_target("Denver Broncos", 2)
    'Denver Broncos [2].'
    >>> short_target("Washington, D.C.", 1)
    'Washington, D.C [1].'
    """
    return with_marker(answer.strip().rstrip(" ,;:.!?") + ".", n)


def sentence_target(passage: str, at: int, n: int) -> str | None:
    """The passage's sentence holding the character offset ``at`` (where the answer span
    starts), with the marker; None if ``at`` is outside every sentence.

    >>> p = "Work began in 1887. It was completed in 1889."
    >>> sentence_target(p, p.index("1889"), 1)
    'It was completed in 1889 [1].'
    """
    for s, e in split_sentences(passage):
        if s <= at < e:
            return with_marker(" ".join(passage[s:e].split()), n)
    return None


def checked_target(question: str, answer: str, sources: Sequence[Chunk], gold: int, at: int) -> str | None:
    """The short target when the app's citation check keeps it unchanged, else the gold
    sentence (the one holding the span at offset ``at`` of the gold passage) when it does,
    else None (the example is skipped).

    A span that only repeats the question's words adds nothing, and the app would drop it:

    >>> src = [Chunk("a", "d", "f.txt", None, 0, 44, "The tower was completed in 1889 in Paris.")]
    >>> checked_target("When was the tower completed?", "1889", src, 1, 27)
    '1889 [1].'
    >>> checked_target("Where is the tower in Paris?", "Paris", src, 1, 35)
    'The tower was completed in 1889 in Paris [1].'
    """
    candidates = [short_target(answer, gold), sentence_target(sources[gold - 1].text, at, gold)]
    for target in candidates:
        if target is None:
            continue
        kept, dropped = verify_answer(target, sources, question)
        if kept == target and not dropped:
            return target
    return None


def paragraph_chunk(p: SquadParagraph, start: int, end: int) -> Chunk:
    """A paragraph slice as the app would hold it after ingesting the paragraph's file."""
    name = paragraph_file_name(p.title, paragraph_index(p.pid))
    return Chunk(id=f"{p.pid}:{start}", doc_id=p.pid, source=name, page=None, start=start, end=end,
                 text=p.context[start:end])  # fmt: skip


def distractor_chunk(p: SquadParagraph, max_chars: int) -> Chunk:
    s, e = clip(p.context, 0, 0, max_chars)
    return paragraph_chunk(p, s, e)
