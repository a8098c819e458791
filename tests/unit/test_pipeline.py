"""The question flow with fakes: retrieval gate, abstention, marker cleaning, verification."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from rag.config import Settings
from rag.pipeline import RagPipeline
from rag.prompting import abstain_message
from rag.services import Services
from tests.fakes import EchoGenerator, HashEmbedder

TEXT = (
    "The Eiffel Tower was completed in 1889 for the World's Fair. It is 330 metres tall.\n\n"
    "The tower is repainted every seven years with about 60 tonnes of paint."
)


def _services(fake_services: Services, tmp_path: Path) -> Services:
    f = tmp_path / "eiffel.txt"
    f.write_text(TEXT)
    fake_services.indexer.ingest_file(f)
    return fake_services


def _pipeline(s: Services, reply: str | None = None) -> RagPipeline:
    return RagPipeline(s.settings, s.retriever, EchoGenerator(reply))


def test_answer_cites_the_source(fake_services: Services, tmp_path: Path) -> None:
    s = _services(fake_services, tmp_path)
    stream = s.pipeline.stream("When was the Eiffel Tower completed?")
    streamed = "".join(stream)
    a = stream.answer
    assert a is not None and not a.abstained
    assert "[1]" in streamed and "[1]" in a.text
    assert a.citations[0].chunk.source.endswith("eiffel.txt")
    assert set(a.timings_ms) >= {"retrieve", "generate", "first_token"}
    j = a.to_json()
    assert j["citations"][0]["source"].endswith("eiffel.txt")  # type: ignore[index]
    assert TEXT[j["citations"][0]["start"] : j["citations"][0]["end"]] == j["citations"][0]["text"]  # type: ignore[index]


def test_nothing_relevant_abstains_without_generating(fake_services: Services, tmp_path: Path) -> None:
    s = _services(fake_services, tmp_path)
    gen = EchoGenerator()
    a = RagPipeline(s.settings, s.retriever, gen).ask("quantum chromodynamics lattice gauge")
    assert a.abstained and a.text == abstain_message() and not a.citations
    assert gen.prompts == []


def test_model_abstention_is_recognised(fake_services: Services, tmp_path: Path) -> None:
    s = _services(fake_services, tmp_path)
    a = _pipeline(s, abstain_message()).ask("When was the Eiffel Tower completed?")
    assert a.abstained and not a.citations


def test_dangling_and_unsupported_claims_are_removed(fake_services: Services, tmp_path: Path) -> None:
    s = _services(fake_services, tmp_path)
    a = _pipeline(s, "It was completed in 1889 [1][7]. It weighs 99,000 tonnes [1].").ask(
        "When was the Eiffel Tower completed?"
    )
    assert a.text == "It was completed in 1889 [1]."
    assert a.unsupported == ("It weighs 99,000 tonnes [1].",)


def test_unbacked_answer_falls_back_to_a_quote(fake_services: Services, tmp_path: Path) -> None:
    s = _services(fake_services, tmp_path)
    a = _pipeline(s, "It was finished on 1 July 1887 at 1 AM.").ask("When was the Eiffel Tower completed?")
    assert a.extractive and not a.abstained
    assert "1889" in a.text and a.text.endswith("[1].")


def test_empty_question(fake_services: Services) -> None:
    assert fake_services.pipeline.ask("   ").abstained


def test_warm_up_prepares_the_generator_for_the_system_prompt_every_question_sends(
    settings: Settings, tmp_path: Path
) -> None:
    """Services.pipeline warms the generator up at load (the in-process model prefills the shared
    system prompt then, not in the first question's time to first token)."""

    class Preparing(EchoGenerator):
        def __init__(self) -> None:
            super().__init__()
            self.prepared: list[list[dict[str, str]]] = []

        def prepare(self, messages: list[dict[str, str]]) -> None:
            self.prepared.append(messages)

    gen = Preparing()
    s = _services(Services(settings, embedder=HashEmbedder(), generator=gen), tmp_path)
    s.pipeline.ask("When was the Eiffel Tower completed?")
    assert len(gen.prepared) == 1 and len(gen.prompts) >= 1
    assert gen.prepared[0][0] == gen.prompts[0][0] and gen.prepared[0][0]["role"] == "system"
    # The user's text starts as a real prompt's does (a source first), so that the tokens up to
    # it are the same (test_real_models checks the tokens themselves).
    assert gen.prepared[0][1]["content"].startswith('<source id="1"')
    assert gen.prompts[0][1]["content"].startswith('<source id="1"')
    RagPipeline(s.settings, s.retriever, EchoGenerator()).warm_up()  # one that cannot prepare: fine


def test_a_failed_warm_up_does_not_stop_the_pipeline(settings: Settings, tmp_path: Path) -> None:
    """Warming up is only a head start: if it fails, the pipeline still loads and answers."""

    class FailsToPrepare(EchoGenerator):
        def prepare(self, messages: list[dict[str, str]]) -> None:
            raise RuntimeError("no room for the prefix")

    s = _services(Services(settings, embedder=HashEmbedder(), generator=FailsToPrepare()), tmp_path)
    a = s.pipeline.ask("When was the Eiffel Tower completed?")
    assert not a.abstained and "1889" in a.text


class FlooredReranker:
    """Scores 1.0 for passages holding ``needle``, else 0.1; its floor is 0.5."""

    name = "fake-floored"
    floor = 0.5

    def __init__(self, needle: str) -> None:
        self.needle = needle

    def score(self, question: str, passages: Sequence[str]) -> list[float]:
        return [1.0 if self.needle in p else 0.1 for p in passages]


def test_passages_under_the_rerankers_floor_are_never_shown(fake_services: Services, tmp_path: Path) -> None:
    s = _services(fake_services, tmp_path)
    settings = s.settings.model_copy(
        update={"top_k": 4, "tuning": dataclasses.replace(s.settings.tuning, min_relevance=-1.0)}
    )
    gen = EchoGenerator()
    p = RagPipeline(settings, s.retriever, gen, reranker=FlooredReranker("1889"))
    sources = p.sources("When was the Eiffel Tower completed?")
    assert sources and all("1889" in x.chunk.text for x in sources)
    a = RagPipeline(settings, s.retriever, gen, reranker=FlooredReranker("no such text")).ask("What is the capital?")
    assert a.abstained and a.text == abstain_message() and not a.citations
    assert gen.prompts == []  # refused without asking the model
