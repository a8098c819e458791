from __future__ import annotations

import itertools

from ingest.chunking import chunk_document, chunk_id_for, doc_id_for, locate_pieces, make_splitter
from rag.types import LoadedDocument, PageSpan
from tests.fakes import HashEmbedder

WORDS = HashEmbedder().count_tokens


def _doc(pages: list[str], source: str = "a.pdf") -> LoadedDocument:
    spans: list[PageSpan] = []
    parts: list[str] = []
    pos = 0
    for i, p in enumerate(pages, 1):
        if parts:
            parts.append("\n\n")
            pos += 2
        spans.append(PageSpan(i, pos, pos + len(p)))
        parts.append(p)
        pos += len(p)
    return LoadedDocument(source, "".join(parts), tuple(spans), "application/pdf")


def _text(n: int, tag: str) -> str:
    return " ".join(f"{tag}{i} word{i % 7}." if i % 9 == 0 else f"{tag}{i}" for i in range(n))


def test_offsets_map_back_to_the_text_exactly() -> None:
    doc = _doc([_text(300, "alpha"), _text(5, "beta"), "", _text(120, "gamma") + "\n\nLast para."])
    chunks = chunk_document(doc, make_splitter(WORDS, 40, 10))
    assert len(chunks) > 5
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
        page = doc.pages[c.page - 1]  # type: ignore[operator]
        assert page.start <= c.start and c.end <= page.end  # never straddles pages


def test_chunks_respect_token_budget_and_overlap() -> None:
    doc = _doc([_text(400, "w")])
    chunks = chunk_document(doc, make_splitter(WORDS, 50, 10))
    assert all(WORDS(c.text) <= 50 for c in chunks)
    # consecutive chunks of a page overlap
    assert any(b.start < a.end for a, b in itertools.pairwise(chunks))
    # together they cover every word of the page
    covered: set[int] = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    words_at = [i for i, ch in enumerate(doc.text) if not ch.isspace()]
    assert set(words_at) <= covered


def test_ids_are_stable_and_depend_on_content() -> None:
    doc = _doc(["Hello there. " * 30])
    splitter = make_splitter(WORDS, 20, 5)
    a = chunk_document(doc, splitter)
    b = chunk_document(doc, splitter)
    assert [c.id for c in a] == [c.id for c in b]
    assert len({c.id for c in a}) == len(a)  # repeated text still gets distinct ids
    edited = _doc(["Prefix added. " + "Hello there. " * 30])
    c = chunk_document(edited, splitter)
    assert {x.id for x in a} & {x.id for x in c}  # unchanged passages keep their ids


def test_doc_id_depends_on_source_only() -> None:
    assert doc_id_for("x/a.md") == doc_id_for("x/a.md") != doc_id_for("x/b.md")
    assert chunk_id_for("d", "t", 0) != chunk_id_for("d", "t", 1)


def test_locate_pieces_with_repeats() -> None:
    text = "ab ab ab"
    assert locate_pieces(text, ["ab ab", "ab ab"]) == [(0, 5), (3, 8)]


def test_non_paginated_documents_have_no_page() -> None:
    doc = LoadedDocument("a.txt", "One. Two. Three.", (PageSpan(None, 0, 16),), "text/plain")
    chunks = chunk_document(doc, make_splitter(WORDS, 20, 2))
    assert [c.page for c in chunks] == [None]
