"""Turn an uploaded file's name (chosen by the browser, i.e. by anyone) into a safe, readable one.

The result is used as the document's ``source``: shown to users in citations, and the
key a re-upload of the same file is matched by. It is never a path.
"""

from __future__ import annotations

import re
import unicodedata

MAX_CHARS = 120
MAX_BYTES = 240  # UTF-8; most file systems allow 255 per name
MAX_EXT_CHARS = 16
FALLBACK_STEM = "upload"

_RESERVED = re.compile(r'[<>:"|?*]')  # besides / and \, which split directories
_SPACES = re.compile(r"\s+")
_EXT = re.compile(rf"\w{{1,{MAX_EXT_CHARS}}}")
_WINDOWS_DEVICES = frozenset(
    {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(1, 10)} | {f"lpt{i}" for i in range(1, 10)}
)


def _clean_chars(name: str) -> str:
    out: list[str] = []
    for ch in name:
        cat = unicodedata.category(ch)
        if ch.isspace():
            out.append(" ")  # tabs, newlines, ideographic space, ...
        elif cat[0] == "C":  # control, format (bidi overrides), private use, unassigned, surrogates
            continue
        else:
            out.append(ch)
    return _SPACES.sub(" ", _RESERVED.sub("_", "".join(out)))


def _fit(stem: str, suffix: str, max_chars: int) -> str:
    stem = stem[: max(1, max_chars - len(suffix))]
    while stem and len((stem + suffix).encode("utf-8")) > MAX_BYTES:
        stem = stem[:-1]
    return stem.rstrip(" .")


def safe_filename(name: str, max_chars: int = MAX_CHARS) -> str:
    """A plain file name without any directory part, safe to store, log and display.

    - keeps only the last path component (``/`` and ``\\`` both separate directories),
      so ``..`` and absolute paths go away;
    - Unicode NFC (macOS sends Korean names decomposed into jamo);
    - drops control and invisible format characters (e.g. right-to-left overrides),
      turns any whitespace into single spaces, replaces ``<>:"|?*`` with ``_``;
    - strips leading dots (no hidden files) and trailing dots and spaces;
    - keeps the extension and shortens the rest to ``max_chars`` characters
      (and 240 UTF-8 bytes);
    - never returns an empty name: ``"upload"`` plus the extension, if any.

    >>> safe_filename("../../x.md")
    'x.md'
    >>> safe_filename("C:\\\\Users\\\\me\\\\보고서 2024.pdf")
    '보고서 2024.pdf'
    >>> safe_filename(".hidden.txt")
    'hidden.txt'
    >>> safe_filename("a\\x00b\\u202e.txt")
    'ab.txt'
    >>> safe_filename('what?<is>"this".md')
    'what__is__this_.md'
    >>> safe_filename("..")
    'upload'
    >>> safe_filename("../.md")
    'upload.md'
    >>> safe_filename("notes.md. ")
    'notes.md'
    >>> len(safe_filename("x" * 500 + ".docx"))
    120
    >>> safe_filename("CON.txt")
    '_CON.txt'
    """
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = _clean_chars(name).strip().rstrip(" .")
    stem, dot, ext = name.rpartition(".")
    if not dot or not _EXT.fullmatch(ext):
        stem, ext = name, ""
    suffix = f".{ext}" if ext else ""
    stem = _fit(stem.strip().lstrip(". "), suffix, max_chars)
    if not stem:
        stem = FALLBACK_STEM
    if stem.lower() in _WINDOWS_DEVICES:
        stem = f"_{stem}"
    return stem + suffix
