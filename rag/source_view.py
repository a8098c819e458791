"""Citation -> source: the page of the original a cited passage came from, the span marked.

- PDF: the page rendered with ``pypdfium2`` and the cited sentence painted over in yellow
  (:func:`render_pdf_page`); the sentence is found in the page's own text layer
  (:func:`find_span`), whatever line breaks the PDF put inside it.
- DOCX, HTML, Markdown, text: the document's text as indexed, the passage and the sentence
  marked, scrolled to (:func:`text_view_html`).

:meth:`rag.services.Services.source_view` puts a :class:`SourceView` together from a citation.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rag.types import Citation, IndexedDocument

_WORD_SPAN = 8  # words matched at each end of a sentence the page text does not hold whole
_SCALE = 1.6  # rendering scale: 1 PDF point -> 1.6 px (an A4 page ~950 px wide)
_HIGHLIGHT = (255, 214, 0, 110)  # RGBA
_LINE_END_HYPHEN = re.compile(r"-[ \t]*\r?\n\s*(?=\w)")


@dataclass(frozen=True)
class SourceView:
    """What the source view shows for one citation."""

    name: str
    page: int | None
    kind: str  # "pdf" (``image`` set) or "text" (``html`` set)
    original: bytes  # the stored original, for download
    mime: str
    image: bytes | None = None  # PNG of the page, the sentence highlighted
    found: bool = True  # False: the sentence was not found on the page image (shown unmarked)
    html: str | None = None


def normalise(text: str) -> tuple[str, list[int]]:
    """Whitespace runs folded to one space, a hyphen at a line end joined to the next line's
    word, letters case-folded; with each kept character's index in ``text``.

    >>> normalise("A  b\\r\\nC")
    ('a b c', [0, 1, 3, 4, 6])
    >>> normalise("to-\\nget")[0]
    'toget'
    """
    out: list[str] = []
    where: list[int] = []
    skip = -1
    for i, ch in enumerate(text):
        if i <= skip:
            continue
        if ch == "-" and (m := _LINE_END_HYPHEN.match(text, i)):
            skip = m.end() - 1
            continue
        if ch.isspace():
            if out and out[-1] != " ":
                out.append(" ")
                where.append(i)
            continue
        out.append(ch.lower())
        where.append(i)
    while out and out[-1] == " ":
        out.pop()
        where.pop()
    return "".join(out), where


def find_span(page_text: str, sentence: str) -> tuple[int, int] | None:
    """Where ``sentence`` sits in ``page_text`` (character offsets), ignoring case and how the
    whitespace is broken; when the whole sentence is not there (a hyphenated line end, a
    ligature), from its first few words to its last few. None if neither end is found.

    >>> page = "The tower is made of\\r\\npuddled iron. It is tall."
    >>> s, e = find_span(page, "The tower is made of puddled iron.")
    >>> page[s:e]
    'The tower is made of\\r\\npuddled iron.'
    >>> find_span(page, "Nothing like it.") is None
    True
    """
    hay, where = normalise(page_text)
    needle, _ = normalise(sentence)
    if not needle:
        return None
    at = hay.find(needle)
    if at >= 0:
        return where[at], where[at + len(needle) - 1] + 1
    words = needle.split(" ")
    head, tail = " ".join(words[:_WORD_SPAN]), " ".join(words[-_WORD_SPAN:])
    start = hay.find(head)
    if start < 0:
        return None
    end = hay.find(tail, start)
    stop = end + len(tail) if end >= 0 else start + len(head)
    return where[start], where[stop - 1] + 1


def render_pdf_page(data: bytes, page: int, sentence: str) -> tuple[bytes, bool]:
    """PNG of page ``page`` (1-based) of the PDF ``data`` with ``sentence`` highlighted, and
    whether the sentence was found on it."""
    import pypdfium2 as pdfium
    from PIL import Image, ImageDraw

    pdf = pdfium.PdfDocument(data)
    try:
        pg = pdf[page - 1]
        _, height = pg.get_size()
        image = pg.render(scale=_SCALE).to_pil().convert("RGBA")
        textpage = pg.get_textpage()
        span = find_span(textpage.get_text_range(), sentence)
        if span is not None:
            overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
            draw = ImageDraw.Draw(overlay)
            for i in range(textpage.count_rects(span[0], span[1] - span[0])):
                left, bottom, right, top = textpage.get_rect(i)
                box = (left * _SCALE, (height - top) * _SCALE, right * _SCALE, (height - bottom) * _SCALE)
                draw.rectangle(box, fill=_HIGHLIGHT)
            image = Image.alpha_composite(image, overlay)
        out = io.BytesIO()
        image.convert("RGB").save(out, format="PNG", optimize=True)
        return out.getvalue(), span is not None
    finally:
        pdf.close()


def text_view_html(text: str, passage: tuple[int, int], sentence: tuple[int, int], height: int = 460) -> str:
    """The document text in a scrolling box, the cited passage shaded and its sentence marked,
    scrolled so that the sentence is in view. Everything from the document is escaped.

    >>> page = text_view_html("Intro. The tower was completed in 1889. End.", (7, 39), (7, 39))
    >>> "<mark" in page and "completed in 1889" in page and "<script>" in page
    True
    >>> "<b>" in text_view_html("<b>bold</b>", (0, 3), (0, 3))
    False
    """
    ps, pe = passage
    ss, se = max(sentence[0], ps), min(sentence[1], pe)
    if ss >= se:
        ss, se = ps, pe
    parts = [
        html.escape(text[:ps]),
        '<span style="background:#fff4c2">',
        html.escape(text[ps:ss]),
        '<mark id="cited" style="background:#ffd600">',
        html.escape(text[ss:se]),
        "</mark>",
        html.escape(text[se:pe]),
        "</span>",
        html.escape(text[pe:]),
    ]
    body = re.sub(r"\n", "<br>", "".join(parts))
    return (
        f'<div id="doc" style="height:{height}px;overflow-y:auto;font:15px/1.55 sans-serif;'
        f'padding:8px 12px;border:1px solid #ddd;border-radius:6px">{body}</div>'
        "<script>const m=document.getElementById('cited');"
        "if(m){m.scrollIntoView({block:'center'});}</script>"
    )


class SourceGone(LookupError):
    """The cited document is no longer in the index (deleted since the answer was given)."""


def build_view(
    doc: IndexedDocument | None, citation: Citation, document_text: Callable[[bytes, str], str]
) -> SourceView:
    """The view of ``citation`` in ``doc`` (its registry row); ``document_text`` extracts the
    text of a stored original as the indexer did (offsets of the chunks point into it)."""
    chunk = citation.chunk
    name = Path(chunk.source).name
    if doc is None:
        raise SourceGone(f"{name} is no longer in the index; ask again to cite what it holds now.")
    data = Path(doc.stored_path).read_bytes()
    h0, h1 = citation.highlight
    sentence = chunk.text[h0:h1]
    if doc.mime == "application/pdf" and chunk.page is not None:
        image, found = render_pdf_page(data, chunk.page, sentence)
        return SourceView(name, chunk.page, "pdf", data, doc.mime, image=image, found=found)
    text = document_text(data, chunk.source)
    start = chunk.start if text[chunk.start : chunk.end] == chunk.text else text.find(chunk.text)
    if start < 0:  # the stored original reads differently now: show the passage alone
        text, start = chunk.text, 0
    end = start + len(chunk.text)
    page = text_view_html(text, (start, end), (start + h0, start + h1))
    return SourceView(name, chunk.page, "text", data, doc.mime, html=page)
