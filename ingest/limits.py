"""How much work one file may cause: caps checked while parsing, and the parser worker's limits.

The size limit (``RAG_MAX_FILE_MB``) bounds bytes, not work: a 10 KiB PDF whose pages share
one content stream extracts 160 MiB of text, and a DOCX table cell can claim 2^31 columns.
These are tuned constants, not settings; each value is far above any real document we
have seen (the samples/ corpus: a 3-page PDF of 5,000 characters, a DOCX of 24,600 XML
tags, a page of 52 HTML elements). A file over a cap is refused with a
:class:`~ingest.loaders.LoadError` saying which limit and what to do.

The parser reads them when a file is loaded (``current_caps()``, ``ingest.sandbox``), so a
test can lower one with ``monkeypatch.setattr``.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- caps, checked while parsing (ingest/pdf_text.py, docx_text.py, html_text.py) --------------
# Pages per PDF: 650 x the sample's 3; longer books come in volumes. ~30 s of pypdf at 15 ms a page.
MAX_PDF_PAGES = 2_000
# Characters one PDF page shows: 20 x a dense page. pypdf slows quadratically with a page's
# text (a page of 4 MiB takes 37 s), which this keeps under ~0.1 s.
MAX_PDF_PAGE_CHARS = 200_000
# Extracted characters per PDF/DOCX/HTML file: about 5,000 dense pages (2,000 x the samples' largest).
MAX_TEXT_CHARS = 10_000_000
# HTML elements and text nodes: 10,000 x the sample page's 52; html.parser reads ~350,000 a second.
MAX_HTML_NODES = 500_000
# XML tags (``<``) over all parts of a DOCX: 80 x the sample's 24,600. At the cap, a DOCX of empty
# paragraphs (the worst case) takes python-docx ~35 s and ~700 MiB.
MAX_DOCX_XML_TAGS = 2_000_000
# Columns one table cell may span: Word allows 63 columns, LibreOffice 1,024 per table.
MAX_DOCX_GRID_SPAN = 1_024
# Table cells per DOCX: a 1,000-page table of 5 columns and 50 rows a page.
MAX_DOCX_TABLE_CELLS = 250_000

# --- the parser worker (ingest/sandbox.py) ----------------------------------------------------
# CPU seconds for one file: the samples take ~10 ms each; a file at any cap above, at most ~35 s.
PARSE_CPU_SECONDS = 60
# Wall-clock seconds for one file: twice the CPU limit, for a machine busy embedding meanwhile.
PARSE_WALL_SECONDS = 120
# Address space of the worker while it parses (~75 MiB of it is the interpreter): 3 x what a DOCX at the
# tag cap needs.
PARSE_MEMORY_MIB = 2_048
# Files parsed at the same time (each in its own worker); further callers wait for one.
PARSE_WORKERS = 2


@dataclass(frozen=True)
class Caps:
    """The caps in force for one file (sent to the worker with it)."""

    pdf_pages: int
    pdf_page_chars: int
    text_chars: int
    html_nodes: int
    docx_xml_tags: int
    docx_grid_span: int
    docx_table_cells: int


def current_caps() -> Caps:
    """The caps as this module defines them now."""
    return Caps(
        pdf_pages=MAX_PDF_PAGES,
        pdf_page_chars=MAX_PDF_PAGE_CHARS,
        text_chars=MAX_TEXT_CHARS,
        html_nodes=MAX_HTML_NODES,
        docx_xml_tags=MAX_DOCX_XML_TAGS,
        docx_grid_span=MAX_DOCX_GRID_SPAN,
        docx_table_cells=MAX_DOCX_TABLE_CELLS,
    )


class CapExceeded(Exception):
    """Raised inside a parser when a file goes over a cap; the worker turns it into a LoadError."""

    def __init__(self, detail: str, fix: str = "Split it into smaller files") -> None:
        super().__init__(detail, fix)
        self.detail, self.fix = detail, fix

    def message(self, source: str) -> str:
        return f"{source}: refused, {self.detail}; the file was not indexed. {self.fix}."


class TextBudget:
    """Counts extracted characters and raises :class:`CapExceeded` as soon as they pass the cap."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, n: int) -> None:
        self.used += n
        if self.used > self.limit:
            raise CapExceeded(f"its text is longer than {self.limit:,} characters, the most one file may hold")
