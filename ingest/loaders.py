"""File -> text with page spans. One loader per format, picked by suffix.

Every failure is a :class:`LoadError` whose message names the problem and what to do,
so one bad file never stops a batch.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

from charset_normalizer import from_bytes

from rag.types import LoadedDocument, PageSpan

PAGE_SEPARATOR = "\n\n"
# A DOCX is a zip: refuse archives that would inflate beyond this (zip bombs).
MAX_UNZIPPED_BYTES = 200 * 1024 * 1024
MAX_ZIP_RATIO = 100


class LoadError(Exception):
    """A file that cannot be indexed; the message is shown to the user as is."""


def _clean(text: str) -> str:
    # NULs break SQLite/Chroma strings; CRLF would make offsets differ between platforms.
    text = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    return re.sub(r"[ \t]+\n", "\n", text)


def decode_text(data: bytes, name: str) -> str:
    """Bytes of a text file -> str, detecting the encoding (UTF-8/16 with or without BOM, CP949, ...).

    >>> decode_text("café".encode("utf-8"), "a.txt")
    'café'
    """
    if not data:
        raise LoadError(f"{name}: the file is empty; nothing to index.")
    for bom, enc in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            return data.decode(enc)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    best = from_bytes(data).best()
    if best is None or _looks_binary(data):
        raise LoadError(
            f"{name}: this does not look like text (binary content or unknown encoding). "
            "Save it as UTF-8 text, or upload the original document format."
        )
    return str(best)


def _looks_binary(data: bytes) -> bool:
    sample = data[:8192]
    if b"\x00" in sample and not (sample.startswith((b"\xff\xfe", b"\xfe\xff"))):
        return True
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    return controls > len(sample) * 0.05


def _single(source: str, text: str, mime: str) -> LoadedDocument:
    text = _clean(text).strip()
    return LoadedDocument(source=source, text=text, pages=(PageSpan(None, 0, len(text)),), mime=mime)


def load_txt(data: bytes, source: str) -> LoadedDocument:
    return _single(source, decode_text(data, source), "text/plain")


def load_markdown(data: bytes, source: str) -> LoadedDocument:
    # Markdown reads fine as is; keeping the markup keeps offsets true to the file.
    return _single(source, decode_text(data, source), "text/markdown")


def load_html(data: bytes, source: str) -> LoadedDocument:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(decode_text(data, source), "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "svg", "iframe", "head"]):
        tag.decompose()
    text = soup.get_text("\n")
    text = re.sub(r"\n[ \t]*(\n[ \t]*)+", "\n\n", text)  # collapse runs of blank lines
    return _single(source, text, "text/html")


def _check_zip(data: bytes, source: str) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            total = sum(i.file_size for i in zf.infolist())
    except zipfile.BadZipFile as e:
        raise LoadError(f"{source}: not a valid DOCX (the zip container is damaged: {e}).") from e
    if total > MAX_UNZIPPED_BYTES or total > MAX_ZIP_RATIO * max(len(data), 1):
        raise LoadError(
            f"{source}: refused, the DOCX would unpack to {total / 2**20:.0f} MiB "
            f"from {len(data) / 2**10:.0f} KiB (a zip bomb?). Re-save it from a word processor."
        )


def load_docx(data: bytes, source: str) -> LoadedDocument:
    _check_zip(data, source)
    import docx

    try:
        d = docx.Document(io.BytesIO(data))
    except Exception as e:  # python-docx raises many types on malformed parts
        raise LoadError(f"{source}: could not read this DOCX ({type(e).__name__}: {e}).") from e
    parts = [p.text.strip() for p in d.paragraphs]
    for table in d.tables:
        parts.append("\n".join(" | ".join(cell.text.strip() for cell in row.cells) for row in table.rows))
    text = "\n\n".join(p for p in parts if p)  # a blank line between paragraphs, as in Markdown
    text = re.sub(r"\n{3,}", "\n\n", text)
    return _single(source, text, "application/vnd.openxmlformats-officedocument.wordprocessingml.document")


def load_pdf(data: bytes, source: str) -> LoadedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError(f"{source}: the PDF is password-protected. Remove the password and upload it again.")
        page_texts = [_clean(page.extract_text() or "").strip() for page in reader.pages]
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, RecursionError) as e:
        raise LoadError(f"{source}: the PDF is damaged or truncated and cannot be read ({e}).") from e
    except Exception as e:  # pypdf can fail in many ways on hostile files
        if "decrypt" in str(e).lower() or "encrypt" in str(e).lower():
            raise LoadError(f"{source}: the PDF is encrypted and cannot be opened ({e}). Remove the protection.") from e
        raise LoadError(f"{source}: the PDF cannot be read ({type(e).__name__}: {e}).") from e
    pages: list[PageSpan] = []
    pieces: list[str] = []
    pos = 0
    for i, t in enumerate(page_texts, start=1):
        if pieces:
            pieces.append(PAGE_SEPARATOR)
            pos += len(PAGE_SEPARATOR)
        pages.append(PageSpan(i, pos, pos + len(t)))
        pieces.append(t)
        pos += len(t)
    return LoadedDocument(source=source, text="".join(pieces), pages=tuple(pages), mime="application/pdf")


LOADERS: dict[str, Callable[[bytes, str], LoadedDocument]] = {
    ".pdf": load_pdf,
    ".docx": load_docx,
    ".html": load_html,
    ".htm": load_html,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".txt": load_txt,
    ".text": load_txt,
}
SUPPORTED_SUFFIXES = tuple(sorted(LOADERS))


def load_bytes(data: bytes, source: str) -> LoadedDocument:
    """Turn a file's bytes into a :class:`LoadedDocument`, or raise :class:`LoadError`.

    ``source`` is the name shown to users; its suffix picks the loader.
    """
    suffix = Path(source).suffix.lower()
    loader = LOADERS.get(suffix)
    if loader is None:
        raise LoadError(
            f"{source}: unsupported file type '{suffix or '(none)'}'. Supported: {', '.join(SUPPORTED_SUFFIXES)}."
        )
    if not data:
        raise LoadError(f"{source}: the file is empty (0 bytes); nothing to index.")
    doc = loader(data, source)
    if not doc.text.strip():
        hint = " (a scanned PDF needs OCR first)" if suffix == ".pdf" else ""
        raise LoadError(f"{source}: no extractable text{hint}; nothing was indexed.")
    return doc


def load_path(path: Path, max_bytes: int, source: str | None = None) -> tuple[LoadedDocument, bytes]:
    """Read ``path`` (refusing files over ``max_bytes`` before reading them) and load it."""
    name = source or str(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise LoadError(f"{name}: cannot read the file ({e.strerror}).") from e
    if size > max_bytes:
        raise LoadError(
            f"{name}: {size / 2**20:.1f} MiB is over the {max_bytes / 2**20:.0f} MiB limit. "
            "Split the file or raise RAG_MAX_FILE_MB."
        )
    data = path.read_bytes()
    return load_bytes(data, name), data
