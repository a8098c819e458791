"""The one place where the whole question flow is written out:

question -> retrieve (dense + BM25, fused) -> (nothing relevant? abstain) -> rerank top-N
         -> prompt -> generate (streamed)
         -> clean markers -> check each claim against its source -> cite -> Answer

A follow-up that leans on the conversation ("How often is it repainted?") is first rewritten
into a standalone question (rag/followup.py), which is what is searched for and answered.

:func:`retrieval_trace` is the retrieval half on its own, every stage's list kept: the app, the
retrieval evaluation and the benchmarks all go through it.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Iterator, Sequence
from typing import Protocol

from rag.cite import citations_for, clean_markers, extract_answer, verify_answer
from rag.config import Settings
from rag.followup import Turn, standalone
from rag.interfaces import Generator, PreparesPrompts, Reranker
from rag.prompting import PromptTemplate, build_messages, load_template
from rag.rerank import rerank_scored
from rag.types import Answer, Chunk, RetrievalTrace, ScoredChunk

log = logging.getLogger(__name__)

# Longer questions are refused before any model sees them: a question is a sentence or a short
# paragraph, and a multi-megabyte one would hold the tokenisers, the reranker and the generator's
# prefill (under its lock) for minutes. 2,000 characters is ~500 tokens, a quarter of the prompt.
MAX_QUESTION_CHARS = 2000


class Retriever(Protocol):
    def trace(
        self, question: str, k: int, doc_ids: Sequence[str] | None = None, floor: bool = True
    ) -> RetrievalTrace: ...


def retrieval_trace(
    settings: Settings,
    retriever: Retriever,
    reranker: Reranker | None,
    question: str,
    doc_ids: Sequence[str] | None = None,
    *,
    depth: int | None = None,
    rerank_top_n: int | None = None,
    floor: bool = True,
) -> RetrievalTrace:
    """Evidence for ``question``, each stage kept: the first stage (``depth`` candidates per
    list, default ``Tuning.candidates``), then, with a reranker, the top ``rerank_top_n`` re-ordered
    (fused with the first-stage order as ``Tuning.rerank_keep_first_stage`` says), and the
    ``top_k`` sources: those under the reranker's relevance floor dropped. ``floor=False`` keeps
    what both floors would drop (evaluation ranks everything)."""
    t = settings.tuning
    tr = retriever.trace(question, depth or t.candidates, doc_ids, floor)
    if reranker is None or not tr.first:
        tr.sources = tr.first[: settings.top_k]
        return tr
    t0 = time.perf_counter()
    tr.reranked, tr.rerank_scores = rerank_scored(
        question, tr.first, reranker, rerank_top_n or t.rerank_top_n, t.rerank_keep_first_stage
    )
    tr.timings["rerank"] = _ms(t0)
    least = getattr(reranker, "floor", float("-inf")) if floor else float("-inf")
    tr.sources = [h for h in tr.reranked[: settings.top_k] if tr.rerank_scores.get(h.chunk.id, float("-inf")) >= least]
    return tr


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def is_abstention(text: str, abstain: str) -> bool:
    """True when the generator said (some form of) the fixed abstention phrase.

    >>> phrase = "The documents do not contain an answer to this question."
    >>> is_abstention(phrase, phrase)
    True
    >>> is_abstention("It was built in 1889 [1].", "The documents do not contain an answer.")
    False
    """
    norm = lambda s: re.sub(r"\W+", " ", s.lower()).strip()  # noqa: E731
    t, a = norm(text), norm(abstain)
    return bool(a) and (a in t or t.startswith(" ".join(a.split()[:5])))


class AnswerStream:
    """Iterate to receive the answer text as it is generated; afterwards ``.answer`` is final.

    The streamed text is the model's raw output; the final ``answer.text`` has its markers
    cleaned and checked, so the UI re-renders it once the stream ends.
    """

    def __init__(self, pieces: Iterator[str]) -> None:
        self._pieces = pieces
        self.answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        yield from self._pieces


class RagPipeline:
    def __init__(
        self,
        settings: Settings,
        retriever: Retriever,
        generator: Generator,
        template: PromptTemplate | None = None,
        reranker: Reranker | None = None,
    ) -> None:
        self.settings = settings
        self.retriever = retriever
        self.generator = generator
        self.template = template or load_template()
        self.reranker = reranker

    def warm_up(self) -> None:
        """Let the generator prepare for this pipeline's prompts (all of them start with the same
        system prompt) before the first question; generators that cannot prepare are left alone.

        The stand-in prompt has one source, as every prompt the generator gets does (with none,
        the pipeline abstains without generating): the user's text must begin as a real one does,
        or the tokeniser may join the template's last newline to what follows, and the prepared
        start would end a token short of a real prompt's (it did, with no source)."""
        if not isinstance(self.generator, PreparesPrompts):
            return
        stand_in = Chunk("warm-up", "warm-up", "warm-up.txt", None, 0, 1, "?")
        try:
            self.generator.prepare(
                build_messages("?", [stand_in], self.template, self.settings.tuning.max_source_chars)
            )
        except Exception:  # only a head start: the first question prefills it and reports any error
            log.warning("generator warm-up failed; the first question will prefill the prompt itself", exc_info=True)

    def sources(
        self, question: str, doc_ids: Sequence[str] | None = None, timings: dict[str, float] | None = None
    ) -> list[ScoredChunk]:
        """Evidence for ``question``: the top-k chunks, best first (:func:`retrieval_trace`)."""
        tr = retrieval_trace(self.settings, self.retriever, self.reranker, question, doc_ids)
        if timings is not None:
            timings.update(tr.timings)
        return tr.sources

    def stream(self, question: str, doc_ids: Sequence[str] | None = None, history: Sequence[Turn] = ()) -> AnswerStream:
        """``history``: the conversation so far, oldest first; a follow-up that leans on it is
        searched for and answered as the standalone question it is rewritten into."""
        out = AnswerStream(iter(()))
        out._pieces = self._run(question, doc_ids, out, history)
        return out

    def ask(self, question: str, doc_ids: Sequence[str] | None = None, history: Sequence[Turn] = ()) -> Answer:
        s = self.stream(question, doc_ids, history)
        for _ in s:
            pass
        assert s.answer is not None
        return s.answer

    def _run(
        self, question: str, doc_ids: Sequence[str] | None, out: AnswerStream, history: Sequence[Turn] = ()
    ) -> Iterator[str]:
        asked = question
        timings: dict[str, float] = {}
        try:
            if question.strip() and len(question) <= MAX_QUESTION_CHARS:
                question = standalone(history, question)
            yield from self._answer(question, doc_ids, out, timings)
        finally:
            if out.answer is not None and question != asked:
                out.answer = dataclasses.replace(out.answer, question=asked, searched_for=question)

    def _answer(
        self, question: str, doc_ids: Sequence[str] | None, out: AnswerStream, timings: dict[str, float]
    ) -> Iterator[str]:
        abstain = self.template.abstain
        t0 = time.perf_counter()
        if not question.strip():
            out.answer = Answer(question, "Please type a question.", True, (), (), timings)
            yield out.answer.text
            return
        if len(question) > MAX_QUESTION_CHARS:
            n = len(question)
            text = f"Please shorten the question to at most {MAX_QUESTION_CHARS:,} characters (it has {n:,})."
            out.answer = Answer(question[:MAX_QUESTION_CHARS], text, True, (), (), timings)
            yield text
            return
        scored = self.sources(question, doc_ids, timings)
        timings["retrieve"] = _ms(t0)
        if not scored:  # nothing relevant enough: say so without asking the model to guess
            timings["generate"] = 0.0
            out.answer = Answer(question, abstain, True, (), (), timings)
            yield abstain
            return
        chunks = [s.chunk for s in scored]
        messages = build_messages(question, chunks, self.template, self.settings.tuning.max_source_chars)
        t1 = time.perf_counter()
        pieces: list[str] = []
        for piece in self.generator.stream(messages):
            if not pieces:
                timings["first_token"] = _ms(t1)
            pieces.append(piece)
            yield piece
        timings["generate"] = _ms(t1)
        out.answer = self.finish(question, "".join(pieces), scored, timings)

    def finish(
        self, question: str, raw: str, scored: Sequence[ScoredChunk], timings: dict[str, float] | None = None
    ) -> Answer:
        """The checked answer from the model's raw text over these sources: markers cleaned,
        unsupported claims dropped, every kept claim cited, or the abstention."""
        abstain, timings = self.template.abstain, timings if timings is not None else {}
        raw = raw.strip()
        chunks = [s.chunk for s in scored]
        if is_abstention(raw, abstain):
            return Answer(question, abstain, True, (), tuple(scored), timings)
        text, dropped = verify_answer(clean_markers(raw, len(chunks)), chunks, question)
        extractive = False
        if not text:  # nothing the model wrote is backed by a source: quote the best sentence
            text = extract_answer(question, chunks) or ""
            extractive = bool(text)
        citations = citations_for(text, chunks)
        if not citations:  # no claim is backed by any source: refuse rather than mislead
            return Answer(question, abstain, True, (), tuple(scored), timings, tuple(dropped))
        return Answer(question, text, False, tuple(citations), tuple(scored), timings, tuple(dropped), extractive)
