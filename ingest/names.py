"""Turn an uploaded file's name (chosen by the browser, i.e. by anyone) into a safe, readable one.

The result is used as the document's ``source``: shown to users in citations, and the
key a re-upload of the same file is matched by. It is never a path, and two names that look
the same come out the same: invisible characters are dropped and look-alike forms folded, so
an upload cannot pose as a different document with an identical-looking name.
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
# Characters that render as nothing: Unicode's Default_Ignorable_Code_Point set (which the
# unicodedata module does not expose; most of it is category Cf, dropped anyway, but the
# combining grapheme joiner, variation selectors and Hangul fillers are not), plus the blank
# Braille pattern.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0000-\U000e0fff]"
)
# Hangul compatibility and halfwidth jamo: NFKC would turn them into conjoining jamo, which
# render differently (and merge with their neighbours), so they are left as they are.
_KEEP_JAMO = re.compile("[\u3131-\u318e\uffa1-\uffdc]")
# Cyrillic and Greek letters drawn like Latin ones (Unicode's confusables), folded to Latin inside
# a word that also has Latin letters: "eiffеl" with a Cyrillic "е" is a forgery of "eiffel", while a
# word wholly in Cyrillic or Greek is left alone.
_LATIN_LOOKALIKES = str.maketrans(
    "аеорсухіјѕԁһԛԝӏАВЕКМНОРСТХЅІЈԚԜҮΑΒΕΖΗΙΚΜΝΟΡΤΥΧοντ",
    "aeopcyxijsdhqwlABEKMHOPCTXSIJQWYABEZHIKMNOPTYXovt",
)
_LETTERS = re.compile(r"[^\W\d_]+")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")


def _normalise(name: str) -> str:
    """NFKC (fullwidth, ligature and other compatibility forms to their plain letters), except
    Hangul jamo; invisible characters dropped; look-alike letters folded in mixed-script words."""
    name = _INVISIBLE.sub("", unicodedata.normalize("NFC", name))
    name = "".join(ch if _KEEP_JAMO.fullmatch(ch) else unicodedata.normalize("NFKD", ch) for ch in name)
    name = _INVISIBLE.sub("", unicodedata.normalize("NFC", name))
    return _LETTERS.sub(lambda m: m[0].translate(_LATIN_LOOKALIKES) if _LATIN.search(m[0]) else m[0], name)


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
    - Unicode NFKC (macOS sends Korean names decomposed into jamo; fullwidth ``ｅ`` becomes ``e``),
      Hangul jamo excepted;
    - drops control and invisible characters (right-to-left overrides, zero-width spaces,
      variation selectors, Hangul fillers, ...), turns any whitespace into single spaces,
      replaces ``<>:"|?*`` with ``_``;
    - folds Cyrillic and Greek look-alikes of Latin letters inside words that mix them with
      Latin ones (``eiffеl`` with a Cyrillic ``е`` becomes ``eiffel``);
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
    >>> safe_filename("eiffel\u200b_tower\u202e.pdf"), safe_filename("ｅｉｆｆｅｌ_tower.pdf")
    ('eiffel_tower.pdf', 'eiffel_tower.pdf')
    """
    name = _normalise(name)
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
