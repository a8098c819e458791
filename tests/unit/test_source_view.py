"""Citation -> source: the PDF page rendered with the cited sentence highlighted, other formats
as the document text with the passage marked, and the stored original for download."""

from __future__ import annotations

import html
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rag.services import Services
from rag.source_view import SourceGone, find_span, render_pdf_page
from tests.conftest import SAMPLES, make_settings
from tests.fakes import EchoGenerator, HashEmbedder

PDF = SAMPLES / "eiffel_tower.pdf"
SENTENCE = "The tower is made of puddled iron, a kind of wrought iron."


def _yellow(png: bytes) -> int:
    """How many pixels are the highlight's yellow over white."""
    px = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    r, g, b = px[..., 0], px[..., 1], px[..., 2]
    return int(((r > 240) & (g > 200) & (g < 240) & (b < 200)).sum())


def test_a_pdf_page_is_rendered_with_the_sentence_highlighted() -> None:
    png, found = render_pdf_page(PDF.read_bytes(), 2, SENTENCE)
    assert found
    plain, found_nothing = render_pdf_page(PDF.read_bytes(), 2, "Nothing like this is on the page.")
    assert not found_nothing
    assert Image.open(io.BytesIO(png)).size == Image.open(io.BytesIO(plain)).size
    assert _yellow(png) > 2000 and _yellow(plain) < 50  # only the marked one is painted


def test_a_sentence_broken_across_lines_or_hyphenated_is_found() -> None:
    page = "It consists of about\r\n18,000 individual iron parts, held to-\r\ngether by rivets."
    s, e = find_span(page, "It consists of about 18,000 individual iron parts, held together by rivets.") or (0, 0)
    assert page[s:].startswith("It consists") and page[:e].endswith("rivets.")


def _services(tmp_path: Path) -> Services:
    s = Services(make_settings(tmp_path / "home", min_relevance=-1.0), HashEmbedder(), EchoGenerator())
    s.ingest([PDF, SAMPLES / "printing_press.md"])
    return s


def _doc(s: Services, name: str) -> list[str]:
    return [d.doc_id for d in s.documents() if Path(d.source).name == name]


def test_every_citation_opens_its_source(tmp_path: Path) -> None:
    s = _services(tmp_path)
    pdf_answer = s.ask("What is the tower made of? puddled iron rivets", _doc(s, "eiffel_tower.pdf"))
    md_answer = s.ask("Who invented the printing press?", _doc(s, "printing_press.md"))
    assert pdf_answer.citations and md_answer.citations
    for citation in pdf_answer.citations:
        view = s.source_view(citation)
        assert view.kind == "pdf" and view.image is not None and view.page == citation.chunk.page
        assert view.found and view.original == PDF.read_bytes()
    for citation in md_answer.citations:
        view = s.source_view(citation)
        assert view.kind == "text" and view.html is not None and '<mark id="cited"' in view.html
        h0, h1 = citation.highlight
        marked = view.html.split('<mark id="cited" style="background:#ffd600">', 1)[1].split("</mark>", 1)[0]
        assert " ".join(html.unescape(marked.replace("<br>", "\n")).split()) == " ".join(
            citation.chunk.text[h0:h1].split()
        )
        assert view.original == (SAMPLES / "printing_press.md").read_bytes()


def test_a_deleted_document_says_so(tmp_path: Path) -> None:
    s = _services(tmp_path)
    citation = s.ask("Who invented the printing press?", _doc(s, "printing_press.md")).citations[0]
    assert s.delete(citation.chunk.doc_id)
    with pytest.raises(SourceGone, match="no longer in the index"):
        s.source_view(citation)
