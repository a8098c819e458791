"""Follow-up questions: "How often is it repainted?" after "When was the Eiffel Tower
completed?" is searched for, and answered, as "How often is the Eiffel Tower repainted?".

A follow-up that leans on the conversation (:func:`needs_context`) is rewritten from the last
exchange (:func:`standalone`): a pronoun (it, its, they, them, their, there) becomes the topic
of the last question (:func:`topic`: its named thing, "the Eiffel Tower", else its last noun),
a personal one (he, she, him, his, her) the person the last answer or question names, and an
elliptic question ("And the Louvre?", "What about Berlin?") the last question with its topic
swapped. The user sees what was searched for ("Searched for: ..."). English only.

Why not the generator: asked to rewrite with a few-shot prompt, the shipped Qwen2.5-0.5B with its
adapter answered instead ("Every year [2].") on 5 of 6 probe follow-ups and the base model kept
the pronoun on 4 of 6, at 3-18 s each on 2 CPU cores (docs/decisions/follow-up-questions.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str


_THING = re.compile(r"\b(it|its|they|them|their|there)\b", re.IGNORECASE)
_PERSON = re.compile(r"\b(he|she|him|his|her)\b", re.IGNORECASE)
_ELLIPTIC = re.compile(r"^\s*(?:and|but|or|what about|how about)\s+(?P<new>[^?]{1,60}?)\s*\??\s*$", re.IGNORECASE)
_QUESTION_WORDS = frozenset(
    [
        "what",
        "when",
        "where",
        "who",
        "whom",
        "whose",
        "which",
        "why",
        "how",
        "was",
        "were",
        "is",
        "are",
        "did",
        "do",
        "does",
        "can",
        "could",
        "will",
        "would",
        "should",
    ]
)
# A named thing: capitalised words (or numbers) in a row, with "of"/"the"/"de" between them,
# and the article before it kept: "the Eiffel Tower", "Apollo 11", "the Bank of England".
_NAME = re.compile(r"(?:\b[Tt]he\s+)?\b[A-Z][\w'’-]*(?:\s+(?:(?:of|the|de|and)\s+)?(?:[A-Z][\w'’-]*|\d[\w.-]*))*")
_WORD = re.compile(r"[A-Za-z][\w'’-]*")
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
        "by",
        "with",
        "as",
        "from",
        "that",
        "this",
        "it",
        "its",
        "into",
        "during",
        "about",
        "which",
        "what",
        "when",
        "where",
        "who",
        "how",
        "why",
        "was",
        "were",
        "is",
        "are",
        "be",
        "been",
        "do",
        "does",
        "did",
        "has",
        "have",
        "had",
    ]
)


def needs_context(question: str) -> bool:
    """Whether ``question`` leans on the conversation.

    >>> needs_context("How often is it repainted?"), needs_context("And the Louvre?")
    (True, True)
    >>> needs_context("When was the Eiffel Tower completed?")
    False
    """
    return bool(_THING.search(question) or _PERSON.search(question) or _ELLIPTIC.match(question))


def names(text: str) -> list[str]:
    """The named things in ``text``, longest first; a question word opening a sentence is no name.

    >>> names("When was the Eiffel Tower completed in Paris?")
    ['the Eiffel Tower', 'Paris']
    """
    out = []
    for m in _NAME.finditer(text):
        words = m.group().split()
        while words and words[0].lower() in _QUESTION_WORDS:
            words = words[1:]
        if words and not (len(words) == 1 and words[0].lower() in ("the",)):
            out.append(" ".join(words))
    return sorted(dict.fromkeys(out), key=len, reverse=True)


def topic(question: str) -> str | None:
    """What ``question`` is about: its longest named thing, else its last content word.

    >>> topic("When was the Eiffel Tower completed?"), topic("What do plants release during photosynthesis?")
    ('the Eiffel Tower', 'photosynthesis')
    """
    found = names(question)
    if found:
        return found[0]
    words = [w for w in _WORD.findall(question) if w.lower() not in _STOP]
    return words[-1] if words else None


def _person(turn: Turn) -> str | None:
    """A person's name (two or more capitalised words) in the answer, else in the question."""
    for text in (turn.answer, turn.question):
        people = [n for n in names(text) if not n.lower().startswith("the ") and len(n.split()) >= 2]
        if people:
            return people[0]
    return None


def _swap(pronoun: re.Match[str], name: str) -> str:
    word = pronoun.group().lower()
    if word in ("its", "their", "his"):
        return f"{name}'s"
    if word == "there":
        return f"at {name}"
    return name


def standalone(history: Sequence[Turn], question: str) -> str:
    """``question`` made to stand alone from the last exchange (see the module text); as asked
    when it needs no context, there is no history, or nothing fits.

    >>> eiffel = [Turn("When was the Eiffel Tower completed?", "In March 1889 [1].")]
    >>> standalone(eiffel, "How often is it repainted?")
    'How often is the Eiffel Tower repainted?'
    >>> standalone(eiffel, "And the Louvre?")
    'When was the Louvre completed?'
    >>> standalone([Turn("Who led Apollo 11?", "Neil Armstrong was the commander [1].")], "When did he land?")
    'When did Neil Armstrong land?'
    >>> standalone(eiffel, "Who designed the Statue of Liberty?")
    'Who designed the Statue of Liberty?'
    """
    if not history or not needs_context(question):
        return question
    last = history[-1]
    about = topic(last.question)
    elliptic = _ELLIPTIC.match(question)
    if elliptic and about and about in last.question:
        return last.question.replace(about, elliptic.group("new").strip(), 1)
    out = question
    person = _PERSON.search(out)
    if person:
        name = _person(last) or about
        if name:
            out = out[: person.start()] + _swap(person, name) + out[person.end() :]
    thing = _THING.search(out)
    if thing and about:
        out = out[: thing.start()] + _swap(thing, about) + out[thing.end() :]
    return out
