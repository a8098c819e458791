"""PDF -> text per page with pypdf, within the caps of ingest/limits.py (run in the parser worker).

The caps are checked while pypdf reads: the page count before any text is extracted, and the
characters of each text-showing operator, per page and per file, as pypdf's operator visitor
meets it. Text shown in an invisible render mode (``3 Tr``; ``7 Tr``, clip only) is blanked
out before pypdf reads it: a reader never sees it.
"""

from __future__ import annotations

import io
from typing import Any

from ingest.limits import CapExceeded, Caps, TextBudget
from ingest.loaders import PAGE_SEPARATOR, LoadError, clean_text, sniff
from rag.types import LoadedDocument, PageSpan

_INVISIBLE_MODES = (3, 7)  # text render modes that neither fill nor stroke (7 only clips)
_SHOW_TEXT = (b"Tj", b"TJ", b"'", b'"')


def _shown_length(operator: bytes, operands: list[Any]) -> int:
    """Characters a text-showing operator shows (bytes of its strings: 2 a glyph for CID fonts)."""
    if operator == b"TJ":
        items = operands[0] if operands and isinstance(operands[0], list) else []
        return sum(len(s) for s in items if isinstance(s, (str, bytes)))
    shown = operands[2:3] if operator == b'"' else operands[:1]
    return sum(len(s) for s in shown if isinstance(s, (str, bytes)))


class _PageVisitor:
    """pypdf operator visitors for one page: count shown characters and blank out text
    shown in an invisible render mode before pypdf reads it. The render mode is part of
    the graphics state: saved by ``q``, restored by ``Q``, inherited by a form XObject
    (``Do``) and unchanged after it."""

    def __init__(self, number: int, budget: TextBudget, caps: Caps) -> None:
        self.number, self.budget, self.page_limit = number, budget, caps.pdf_page_chars
        self.shown = 0
        self.mode = 0
        self.saved: list[int] = []
        self.forms: list[tuple[int, list[int]]] = []
        self.stopped: CapExceeded | None = None

    def before(self, operator: bytes, operands: list[Any], cm: Any, tm: Any) -> None:
        if operator == b"Tr" and operands and isinstance(operands[0], (int, float)):
            self.mode = int(operands[0])
        elif operator == b"q":
            self.saved.append(self.mode)
        elif operator == b"Q" and self.saved:
            self.mode = self.saved.pop()
        elif operator == b"Do":
            self.forms.append((self.mode, list(self.saved)))
        elif operator in _SHOW_TEXT:
            if self.mode in _INVISIBLE_MODES:
                operands.clear()  # pypdf skips a text operator without operands
                return
            try:
                self._count(_shown_length(operator, operands))
            except CapExceeded as e:
                self.stopped = e  # pypdf swallows exceptions inside form XObjects: raised again after the page
                raise

    def _count(self, n: int) -> None:
        self.shown += n
        if self.shown > self.page_limit:
            raise CapExceeded(
                f"page {self.number} shows more than {self.page_limit:,} characters (20 times a dense page)",
                "Re-export the PDF from the original application, or split it",
            )
        self.budget.take(n)

    def after(self, operator: bytes, operands: list[Any], cm: Any, tm: Any) -> None:
        if operator == b"Do" and self.forms:
            self.mode, self.saved = self.forms.pop()


def _pdf_pages(data: bytes, source: str, caps: Caps) -> list[str]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not reader.decrypt(""):
        raise LoadError(f"{source}: the PDF is password-protected. Remove the password and upload it again.")
    if len(reader.pages) > caps.pdf_pages:
        raise CapExceeded(
            f"the PDF has {len(reader.pages):,} pages, more than the {caps.pdf_pages:,} one file may have"
        )
    budget = TextBudget(caps.text_chars)
    texts = []
    for number, page in enumerate(reader.pages, start=1):
        visitor = _PageVisitor(number, budget, caps)
        text = page.extract_text(visitor_operand_before=visitor.before, visitor_operand_after=visitor.after)
        if visitor.stopped:
            raise visitor.stopped
        texts.append(clean_text(text or "").strip())
    return texts


def load_pdf(data: bytes, source: str, caps: Caps) -> LoadedDocument:
    from pypdf.errors import DependencyError, PdfReadError

    if b"%PDF-" not in data[:1024]:  # readers accept the header anywhere in the first KiB
        kind = sniff(data)
        what = f"it looks like {kind}" if kind else "it does not start with %PDF-"
        raise LoadError(f"{source}: this is not a PDF ({what}). Give the file its real extension.")
    try:
        page_texts = _pdf_pages(data, source, caps)
    except (LoadError, CapExceeded, MemoryError):
        raise
    except DependencyError as e:  # AES encryption needs the optional `cryptography` package
        raise LoadError(
            f"{source}: the PDF is encrypted with AES, which needs the 'cryptography' package ({e}). "
            "Install it (pip install cryptography) or save the PDF again without protection."
        ) from e
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, RecursionError) as e:
        raise LoadError(
            f"{source}: the PDF is damaged or truncated and cannot be read ({e}). "
            "Download it again or re-export it from the original application."
        ) from e
    except Exception as e:  # pypdf can fail in many ways on hostile files
        if "decrypt" in str(e).lower() or "encrypt" in str(e).lower():
            raise LoadError(f"{source}: the PDF is encrypted and cannot be opened ({e}). Remove the protection.") from e
        raise LoadError(
            f"{source}: the PDF cannot be read ({type(e).__name__}: {e}). Re-export it from the original application."
        ) from e
    pages: list[PageSpan] = []
    pos = 0
    for i, t in enumerate(page_texts, start=1):
        pos += len(PAGE_SEPARATOR) if i > 1 else 0
        pages.append(PageSpan(i, pos, pos + len(t)))
        pos += len(t)
    return LoadedDocument(
        source=source, text=PAGE_SEPARATOR.join(page_texts), pages=tuple(pages), mime="application/pdf"
    )
