"""Fast stand-ins for the heavy engines, implementing rag.interfaces exactly."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence

import numpy as np

from rag.interfaces import Vectors

_WORD = re.compile(r"\w+")


class HashEmbedder:
    """Bag-of-words hashed into ``dim`` buckets, L2-normalised: texts sharing words are close."""

    name = "fake-hash"

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self.calls: list[int] = []  # how many texts each embed_documents call received

    def count_tokens(self, text: str) -> int:
        return len(_WORD.findall(text))

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for w in _WORD.findall(text.lower()):
            v[int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dim] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        self.calls.append(len(texts))
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def embed_query(self, text: str) -> Vectors:
        return self._vec(text).reshape(1, -1)


class EchoGenerator:
    """Answers with the first sentence of source [1] and cites it, like a well-behaved model.

    ``reply`` overrides the output (e.g. to test abstention or dangling markers).
    """

    name = "fake-echo"

    def __init__(self, reply: str | None = None) -> None:
        self.reply = reply
        self.prompts: list[list[dict[str, str]]] = []

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        self.prompts.append(messages)
        if self.reply is not None:
            text = self.reply
        else:
            m = re.search(r'<source id="1"[^>]*>\n(.*?)</source>', messages[-1]["content"], re.DOTALL)
            body = " ".join((m.group(1) if m else "").split())
            first = re.split(r"(?<=[.!?])\s", body, maxsplit=1)[0]
            text = f"{first.rstrip('.')} [1]."
        yield from re.findall(r"\S+\s*", text)


class KeywordReranker:
    """Scores a passage by how many distinct question words it contains."""

    name = "fake-keyword"

    def __init__(self) -> None:
        self.calls: list[int] = []  # passages per call

    def score(self, question: str, passages: Sequence[str]) -> list[float]:
        self.calls.append(len(passages))
        q = set(_WORD.findall(question.lower()))
        return [float(len(q & set(_WORD.findall(p.lower())))) for p in passages]


class OtherHashEmbedder(HashEmbedder):
    """Another "model": the same dimension as :class:`HashEmbedder`, other vectors (its buckets
    rotated), so vectors of the two must never be mixed in one collection."""

    name = "fake-hash-other"

    def _vec(self, text: str) -> np.ndarray:
        return np.roll(super()._vec(text), 7)
