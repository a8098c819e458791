"""rag.ui.widgets: the pure rendering helpers (escaping, highlighting, labels)."""

from __future__ import annotations

import doctest

import rag.ui.chat
import rag.ui.widgets
from rag.types import Chunk, Citation
from rag.ui.widgets import citation_html, citation_label, highlight_html, md_escape


def cite(text: str, span: tuple[int, int], source: str = "docs/a.pdf", page: int | None = 2) -> Citation:
    chunk = Chunk(id="c", doc_id="d", source=source, page=page, start=0, end=len(text), text=text)
    return Citation(n=1, chunk=chunk, highlight=span)


def test_doctests() -> None:
    assert doctest.testmod(rag.ui.widgets).failed == 0
    assert doctest.testmod(rag.ui.chat).failed == 0


def test_highlight_escapes_every_part() -> None:
    text = "<b>bold</b> & <script>alert(1)</script> end"
    out = highlight_html(text, (text.index("<script>"), text.index(" end")))
    assert out == ("&lt;b&gt;bold&lt;/b&gt; &amp; <mark>&lt;script&gt;alert(1)&lt;/script&gt;</mark> end")


def test_highlight_clamps_bad_spans() -> None:
    assert highlight_html("abc", (-5, 2)) == "<mark>ab</mark>c"
    assert highlight_html("abc", (2, 99)) == "ab<mark>c</mark>"
    assert highlight_html("abc", (2, 1)) == "abc"


def test_citation_html_is_one_html_block() -> None:
    html = citation_html(cite("line one\n\n# not a heading\r\n*x*", (0, 4)))
    assert "\n" not in html  # a blank line would end the HTML block and let Markdown in
    assert html.startswith("<div")
    assert html.endswith("</div>")
    assert "[1] a.pdf · page 2" in html
    assert "<mark>line</mark>" in html


def test_citation_label_without_page_and_hostile_name() -> None:
    assert citation_label(cite("t", (0, 1), source="notes.md", page=None)) == "[1] notes.md"
    html = citation_html(cite("t", (0, 1), source='<img src=x onerror="alert(1)">.md', page=None))
    assert "<img" not in html
    assert "&lt;img" in html


def test_md_escape_neutralises_markdown() -> None:
    assert md_escape("**bold** [link](x) `code` $x$") == "\\*\\*bold\\*\\* \\[link\\](x) \\`code\\` \\$x\\$"
