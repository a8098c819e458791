"""DOCX -> visible text with python-docx, within the caps of ingest/limits.py (run in the parser worker).

Before python-docx parses the XML parts whole, their tags are counted as they inflate, so a
DOCX padded to pass the zip-bomb ratio check is refused before its tree is built; absurd
tables (a cell spanning 2^31 columns) are refused before they are read, and cells are read as
written, never repeated once per spanned column. Characters are counted as runs are read.
Runs hidden with ``w:vanish`` are not extracted: a reader never sees them.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

from ingest.limits import CapExceeded, Caps, TextBudget
from ingest.loaders import LoadError, format_size, single_document, sniff
from rag.types import LoadedDocument

# A DOCX is a zip: refuse archives that would inflate beyond this (zip bombs).
# The sizes checked are the ones the archive declares; zipfile never inflates a member
# beyond its declared size (a forged, smaller size ends in a CRC error instead).
MAX_UNZIPPED_BYTES = 200 * 1024 * 1024
MAX_ZIP_RATIO = 100

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def check_zip(data: bytes, source: str) -> None:
    """Refuse what is not a zip, and zips that declare more than MAX_UNZIPPED_BYTES or a
    MAX_ZIP_RATIO inflation (zip bombs)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            total = sum(i.file_size for i in zf.infolist())
    except zipfile.BadZipFile as e:
        kind = sniff(data)
        if not data.startswith(b"PK"):
            what = f"it looks like {kind}" if kind else "it is not a zip archive, as a DOCX must be"
            raise LoadError(
                f"{source}: this is not a Word .docx file ({what}). "
                "Open it in a word processor and save it as .docx, or give it its real extension."
            ) from e
        raise LoadError(
            f"{source}: not a valid DOCX (the zip container is damaged: {e}). Re-save it from a word processor."
        ) from e
    if total > MAX_UNZIPPED_BYTES or total > MAX_ZIP_RATIO * max(len(data), 1):
        raise LoadError(
            f"{source}: refused, the DOCX would unpack to {format_size(total)} "
            f"from {format_size(len(data))} (a zip bomb?). Re-save it from a word processor."
        )


def scan_docx_xml(data: bytes, caps: Caps) -> None:
    """Refuse a DOCX whose XML parts hold more than ``caps.docx_xml_tags`` tags, counting the
    ``<`` of each part while it inflates (python-docx then parses the parts whole; every
    node it builds has its own ``<``, as entities are not expanded). Parts that declare no
    more bytes than the cap cannot hold more ``<`` (zipfile never inflates past the declared
    size), so a normal document is not inflated twice."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        parts = [i for i in zf.infolist() if i.filename.lower().endswith((".xml", ".rels"))]
        if sum(i.file_size for i in parts) <= caps.docx_xml_tags:
            return
        tags = 0
        for info in parts:
            with zf.open(info) as fh:
                while chunk := fh.read(1 << 16):
                    tags += chunk.count(b"<")
                    if tags > caps.docx_xml_tags:
                        raise CapExceeded(
                            f"the DOCX has more than {caps.docx_xml_tags:,} XML tags",
                            "Split the document into smaller files",
                        )


def check_tables(body: Any, caps: Caps) -> None:
    """Refuse absurd tables before reading them: too many cells, or a cell spanning more
    columns than any word processor makes (python-docx repeats a cell once per column)."""
    cells = int(body.xpath("count(//w:tc)"))
    if cells > caps.docx_table_cells:
        raise CapExceeded(f"its tables have {cells:,} cells, more than the {caps.docx_table_cells:,} one file may have")
    spans = [int(v) for v in body.xpath("//w:tcPr/w:gridSpan/@w:val") if v.strip().isdigit()]
    if spans and max(spans) > caps.docx_grid_span:
        raise CapExceeded(
            f"a table cell spans {max(spans):,} columns, more than {caps.docx_grid_span:,} (Word allows 63)",
            "Re-save it from a word processor",
        )


def _off(on_off: Any) -> bool:
    return on_off.get(_W + "val", "true") in ("0", "false", "off")


class _DocxText:
    """Visible text of paragraphs: runs hidden (``w:vanish``) directly, by their character
    style, by their paragraph's style (each following ``basedOn``) or by the document
    defaults are left out. Counts the characters it keeps."""

    def __init__(self, document: Any, budget: TextBudget) -> None:
        self.styles = document.styles.element
        self.cache: dict[str, bool | None] = {}
        vanish = self.styles.xpath("./w:docDefaults/w:rPrDefault/w:rPr/w:vanish")
        self.default = bool(vanish) and not _off(vanish[0])
        ids = self.styles.xpath('./w:style[@w:type="paragraph" and @w:default="1"]/@w:styleId')
        self.default_p_style = str(ids[-1]) if ids else ""
        self.budget = budget

    def style_hidden(self, style_id: str) -> bool | None:
        """Whether the style (or the first of its bases that says) hides text; None: none says."""
        if style_id not in self.cache:
            self.cache[style_id] = None  # a basedOn loop ends here
            style = self.styles.get_by_id(style_id) if style_id else None
            vanish = style.xpath("./w:rPr/w:vanish") if style is not None else []
            if vanish:
                self.cache[style_id] = not _off(vanish[0])
            elif style is not None and style.basedOn_val:
                self.cache[style_id] = self.style_hidden(style.basedOn_val)
        return self.cache[style_id]

    def paragraph(self, paragraph: Any) -> str:
        from docx.text.hyperlink import Hyperlink

        p_hidden = self.style_hidden(paragraph._p.style or self.default_p_style)
        out = []
        for item in paragraph.iter_inner_content():
            for run in item.runs if isinstance(item, Hyperlink) else [item]:
                hidden = run.font.hidden
                if hidden is None and run._r.style:
                    hidden = self.style_hidden(run._r.style)
                if hidden is None:
                    hidden = p_hidden if p_hidden is not None else self.default
                if not hidden:
                    text = run.text
                    self.budget.take(len(text))
                    out.append(text)
        return "".join(out).strip()


def load_docx(data: bytes, source: str, caps: Caps) -> LoadedDocument:
    check_zip(data, source)
    import docx
    from docx.table import _Cell

    try:
        scan_docx_xml(data, caps)
        d = docx.Document(io.BytesIO(data))
        check_tables(d.element, caps)
        visible = _DocxText(d, TextBudget(caps.text_chars))
        parts = [visible.paragraph(p) for p in d.paragraphs]
        for table in d.tables:
            # the cells as written (row.cells repeats a cell once per column it spans)
            rows = [[_Cell(tc, table) for tc in row._tr.tc_lst] for row in table.rows]
            parts.append(
                "\n".join(
                    " | ".join("\n".join(visible.paragraph(p) for p in cell.paragraphs).strip() for cell in row)
                    for row in rows
                )
            )
    except (CapExceeded, MemoryError):
        raise
    except Exception as e:  # python-docx, lxml and zipfile raise many types on malformed parts
        raise LoadError(
            f"{source}: could not read this DOCX ({type(e).__name__}: {e}). "
            "Open it in a word processor and save it again as .docx."
        ) from e
    text = "\n\n".join(p for p in parts if p)  # a blank line between paragraphs, as in Markdown
    return single_document(source, re.sub(r"\n{3,}", "\n\n", text), DOCX_MIME)
