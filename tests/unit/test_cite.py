from __future__ import annotations

from rag.cite import citations_for, clean_markers, extract_answer, marker_numbers, verify_answer
from rag.types import Chunk


def _c(text: str, source: str = "a.txt") -> Chunk:
    return Chunk("id-" + text[:5], "doc", source, None, 0, len(text), text)


SOURCES = [
    _c("Work began in 1887. The tower was completed in 1889. It is 330 metres tall."),
    _c("The reef stretches for over 2,300 kilometres along the coast."),
]


def test_marker_forms() -> None:
    assert marker_numbers("a [1] b [2, 3] c [Source 4] d [1][2]") == [1, 2, 3, 4, 1, 2]


def test_dangling_markers_are_dropped() -> None:
    assert clean_markers("Built in 1889 [1][5]. Long [9].", 2) == "Built in 1889 [1]. Long."
    assert clean_markers("x [0] y [2, 2]", 2) == "x y [2]"


def test_citations_map_to_chunks_and_highlight_the_supporting_sentence() -> None:
    cites = citations_for("It was completed in 1889 [1]. The reef is 2,300 km long [2].", SOURCES)
    assert [c.n for c in cites] == [1, 2]
    assert cites[0].chunk is SOURCES[0]
    s, e = cites[0].highlight
    assert SOURCES[0].text[s:e] == "The tower was completed in 1889."


def test_verify_drops_claims_with_numbers_no_source_has() -> None:
    text, dropped = verify_answer(
        "The tower was completed in 1889 [1]. It has 46,000 rivets [1].", SOURCES, "When was it completed?"
    )
    assert text == "The tower was completed in 1889 [1]."
    assert dropped == ["It has 46,000 rivets [1]."]


def test_verify_recites_a_claim_cited_to_the_wrong_source() -> None:
    text, _ = verify_answer("The reef stretches over 2,300 kilometres [1].", SOURCES, "How long is the reef?")
    assert text == "The reef stretches over 2,300 kilometres [2]."


def test_verify_drops_an_echoed_question() -> None:
    text, dropped = verify_answer("When was the tower completed?", SOURCES, "When was the tower completed?")
    assert text == "" and dropped


def test_extractive_fallback_needs_real_overlap() -> None:
    assert extract_answer("When was the tower completed?", SOURCES) == "The tower was completed in 1889 [1]."
    assert extract_answer("What is the capital of Australia?", SOURCES) is None
