"""File -> text with page spans. One loader per format, picked by suffix.

Every failure is a :class:`LoadError` whose message names the problem and what to do,
so one bad file never stops a batch: :func:`load_bytes` also turns any unexpected
parser exception into a :class:`LoadError`.
"""

from __future__ import annotations

import re
import stat
import unicodedata
from collections.abc import Callable
from pathlib import Path

from charset_normalizer import from_bytes

from ingest.html_text import strip_markdown_comments
from rag.types import LoadedDocument, PageSpan

PAGE_SEPARATOR = "\n\n"
# Korean text in a legacy encoding is accepted when at least this share of its
# non-ASCII letters decode to Hangul syllables (see :func:`_decode_korean`).
MIN_HANGUL_SHARE = 0.8

# What a file really is, by its first bytes: used to say "this .txt is a PNG image".
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a zip archive (or a DOCX/XLSX/PPTX)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Microsoft Office file (.doc/.xls/.ppt)"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"MZ", "a Windows program"),
    (b"\x7fELF", "a Linux program"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"{\\rtf", "an RTF document"),
)


class LoadError(Exception):
    """A file that cannot be indexed; the message is shown to the user as is."""


def format_size(n: float) -> str:
    """A byte count for people.

    >>> format_size(20_480), format_size(10_485), format_size(52_428_800), format_size(512)
    ('20.0 KiB', '10.2 KiB', '50.0 MiB', '512 bytes')
    """
    if n < 1024:
        return f"{n:.0f} bytes"
    if n < 1024**2:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024**2:.1f} MiB"


def check_size(size: int, max_bytes: int, name: str) -> None:
    """Raise :class:`LoadError` when ``size`` is over ``max_bytes`` (call it before reading the file)."""
    if size > max_bytes:
        raise LoadError(
            f"{name}: {format_size(size)} is over the {format_size(max_bytes)} limit. "
            "Split the file or raise RAG_MAX_FILE_MB."
        )


def sniff(data: bytes) -> str | None:
    """What the first bytes say a file is, e.g. ``"a PNG image"``; None when they say nothing."""
    head = data[:16]
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return None


def clean_text(text: str) -> str:
    # NULs break SQLite/Chroma strings; CRLF would make offsets differ between platforms.
    text = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    return re.sub(r"[ \t]+\n", "\n", text)


def _not_text(data: bytes, name: str) -> LoadError:
    kind = sniff(data)
    what = f"it looks like {kind}, not text" if kind else "binary content or an unknown encoding"
    return LoadError(
        f"{name}: this does not look like text ({what}). "
        "Save it as UTF-8 text, or upload the original document with its real extension."
    )


def decode_text(data: bytes, name: str) -> str:
    """Bytes of a text file -> str, detecting the encoding.

    In order: a BOM (UTF-8/16); UTF-16 without a BOM (a NUL in every other byte); strict
    UTF-8; Korean CP949/EUC-KR (when it decodes cleanly to mostly Hangul: the
    detector below guesses wrong on short Korean text); then charset-normalizer, preferring
    Windows-1252 when it fits as well as the detector's pick (short Western text is a tie
    the detector otherwise breaks at random, e.g. ``crème`` -> ``crčme``).

    >>> decode_text("café".encode("utf-8"), "a.txt")
    'café'
    >>> decode_text("한국어".encode("cp949"), "a.txt")
    '한국어'
    >>> decode_text("café crème".encode("cp1252"), "a.txt")
    'café crème'
    """
    if not data:
        raise LoadError(f"{name}: the file is empty (0 bytes); nothing to index.")
    for bom, enc in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(enc)
            except UnicodeDecodeError as e:
                raise LoadError(
                    f"{name}: the file starts with a {enc.upper()} byte-order mark but is not valid "
                    f"{enc.upper()} ({e.reason} at byte {e.start}). Save it again as UTF-8 text."
                ) from e
    utf16 = _decode_utf16_without_bom(data)  # before UTF-8: NULs are valid UTF-8
    if utf16 is not None:
        return utf16
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if _control_share(text[:8192]) > 0.05:
            raise _not_text(data, name)
        return text
    if _looks_binary(data):
        raise _not_text(data, name)
    korean = _decode_korean(data)
    if korean is not None:
        return korean
    results = from_bytes(data)
    best = results.best()
    if best is None:
        raise _not_text(data, name)
    try:
        western: str | None = data.decode("cp1252")
    except UnicodeDecodeError:
        western = None
    if (
        western is not None
        and _looks_western(western)
        and any(m.chaos <= best.chaos and str(m) == western for m in results)
    ):
        return western
    return str(best)


def _control_share(text: str) -> float:
    """Share of control characters, not counting whitespace and ESC (colour codes in logs)."""
    if not text:
        return 0.0
    return sum(1 for c in text if ord(c) < 32 and c not in "\t\n\f\r\x1b") / len(text)


def _looks_binary(data: bytes) -> bool:
    sample = data[:8192]
    if b"\x00" in sample and not (sample.startswith((b"\xff\xfe", b"\xfe\xff"))):
        return True
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    return controls > len(sample) * 0.05


def _decode_utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 text of mostly ASCII/Latin letters has a NUL in every other byte."""
    sample = data[:8192]
    if len(data) % 2 or len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    for zeros, other, enc in ((odd, even, "utf-16-le"), (even, odd, "utf-16-be")):
        if zeros.count(0) >= 0.4 * len(zeros) and other.count(0) <= 0.02 * len(other):
            try:
                text = data.decode(enc)
            except UnicodeDecodeError:
                return None
            return None if _control_share(text[:4096]) > 0.05 else text
    return None


def _decode_korean(data: bytes) -> str | None:
    """EUC-KR/CP949 when the bytes decode cleanly and the letters are mostly Hangul syllables.

    Other CJK encodings decode "cleanly" as CP949 too, but to a mix of Hanja and jamo
    (Japanese kana land on jamo), so they fail the Hangul share.
    """
    for enc in ("euc_kr", "cp949"):  # EUC-KR first: Python's codec also composes jamo sequences
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        letters = [c for c in text if ord(c) > 127 and unicodedata.category(c)[0] in "LN"]
        hangul = sum(1 for c in letters if "\uac00" <= c <= "\ud7a3")
        if hangul and hangul >= MIN_HANGUL_SHARE * len(letters):
            return text
        return None
    return None


_WESTERN_SYMBOLS = frozenset("’‘“”‚„–—…€«»‹›°©®™§¶·•†‡‰±×÷¿¡\u00a0²³¹½¼¾µ¢£¥")


def _looks_western(text: str) -> bool:
    """Windows-1252 read right: accented Latin letters, at most two in a row (``réé``),
    or typographic punctuation. Cyrillic or Greek misread as 1252 makes longer runs."""
    for run in re.findall(r"[^\x00-\x7f]+", text):
        if len(run) > 2:
            return False
        if not all(c in _WESTERN_SYMBOLS or unicodedata.name(c, "").startswith("LATIN") for c in run):
            return False
    return True


def single_document(source: str, text: str, mime: str) -> LoadedDocument:
    """A document without pages: its cleaned text as one span."""
    text = clean_text(text).strip()
    return LoadedDocument(source=source, text=text, pages=(PageSpan(None, 0, len(text)),), mime=mime)


def load_txt(data: bytes, source: str) -> LoadedDocument:
    return single_document(source, decode_text(data, source), "text/plain")


def load_markdown(data: bytes, source: str) -> LoadedDocument:
    # The markup is kept (offsets stay close to the file), but not comments: they are hidden text.
    return single_document(source, strip_markdown_comments(decode_text(data, source)), "text/markdown")


# HTML, DOCX and PDF are parsed in a worker process with CPU, memory and time limits
# (ingest/sandbox.py), by the parsers in ingest/pdf_text.py, docx_text.py and html_text.py, within the
# caps of ingest/limits.py. Plain text and Markdown stay here: decoding is linear in the
# bytes, which the size limit bounds, and the text is never longer than the file.
def _in_worker(suffix: str) -> Callable[[bytes, str], LoadedDocument]:
    def load(data: bytes, source: str) -> LoadedDocument:
        from ingest.sandbox import parse_in_worker

        return parse_in_worker(suffix, data, source)

    return load


load_pdf, load_docx, load_html = _in_worker(".pdf"), _in_worker(".docx"), _in_worker(".html")


def unreadable(source: str, suffix: str, e: Exception) -> LoadError:
    """The error for an unexpected parser exception: one bad file must not stop a batch."""
    return LoadError(
        f"{source}: could not read this {suffix[1:].upper()} file ({type(e).__name__}: {e}). "
        "Re-save it from the application that made it, or convert it to PDF or text."
    )


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

# Why a loader found no text, by suffix: appended to "no extractable text".
_EMPTY_HINTS = {
    ".pdf": " (a scanned PDF needs OCR first)",
    ".docx": " (text in text boxes, headers, footers and images is not read)",
    ".html": " (the page has no visible text; scripts and hidden elements are not indexed)",
    ".htm": " (the page has no visible text; scripts and hidden elements are not indexed)",
}
_TEXT_HINT = " (the file contains only whitespace)"


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
    try:
        doc = loader(data, source)
    except LoadError:
        raise
    except Exception as e:  # a parser bug or a hostile file must fail this file, not the batch
        raise unreadable(source, suffix, e) from e
    if not doc.text.strip():
        hint = _EMPTY_HINTS.get(suffix, _TEXT_HINT)
        raise LoadError(f"{source}: no extractable text{hint}; nothing was indexed.")
    return doc


def load_path(path: Path, max_bytes: int, source: str | None = None) -> tuple[LoadedDocument, bytes]:
    """Read ``path`` (refusing files over ``max_bytes`` before reading them) and load it.

    Only regular files: a device or a pipe named on the command line (``/dev/zero``) would
    never end. At most ``max_bytes + 1`` bytes are read, so a file growing meanwhile is
    refused too.
    """
    name = source or str(path)
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise LoadError(f"{name}: not a regular file (a folder, device or pipe); nothing to index.")
        check_size(st.st_size, max_bytes, name)
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as e:
        raise LoadError(f"{name}: cannot read the file ({e.strerror or e}).") from e
    check_size(len(data), max_bytes, name)
    return load_bytes(data, name), data
