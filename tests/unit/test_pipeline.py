"""The question flow with fakes: retrieval gate, abstention, marker cleaning, verification."""

from __future__ import annotations

from pathlib import Path

from rag.pipeline import RagPipeline
from rag.prompting import abstain_message
from rag.services import Services
from tests.fakes import EchoGenerator

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
