"""ingest.names.safe_filename: uploaded names become plain, safe, readable file names."""

from __future__ import annotations

import doctest
import unicodedata

import pytest

import ingest.names
from ingest.names import safe_filename


def test_doctests() -> None:
    assert doctest.testmod(ingest.names).failed == 0


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../x.md", "x.md"),
        ("/etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\evil.docx", "evil.docx"),
        ("a/b\\c/d.txt", "d.txt"),
        ("..", "upload"),
        ("../", "upload"),
        ("", "upload"),
        ("   ", "upload"),
        (".md", "upload.md"),
        ("...md", "upload.md"),
        (".bashrc", "upload.bashrc"),
        (".hidden.md", "hidden.md"),
        ("..notes.txt", "notes.txt"),
        ("notes.", "notes"),
        ("notes.md...", "notes.md"),
        ("line\nbreak\ttab.md", "line break tab.md"),
        ("nul\x00byte\x1f.txt", "nulbyte.txt"),
        ("invoice\u202efdp.exe.pdf", "invoicefdp.exe.pdf"),  # right-to-left override dropped
        ('a<b>c:d"e|f?g*h.md', "a_b_c_d_e_f_g_h.md"),
        ("many    spaces .md", "many spaces.md"),
        ("보고서 2024.pdf", "보고서 2024.pdf"),
        ("日本語のファイル.docx", "日本語のファイル.docx"),
        ("Ünïcödé.HTML", "Ünïcödé.HTML"),
        ("archive.tar.gz", "archive.tar.gz"),
        ("no extension", "no extension"),
        ("weird.ext with space", "weird.ext with space"),
        ("nul.md", "_nul.md"),
    ],
)
def test_safe_filename(given: str, expected: str) -> None:
    assert safe_filename(given) == expected


def test_korean_decomposed_names_are_composed() -> None:
    nfd = unicodedata.normalize("NFD", "보고서.md")
    assert nfd != "보고서.md"
    assert safe_filename(nfd) == "보고서.md"


@pytest.mark.parametrize("stem", ["x" * 500, "가" * 500, "📄" * 300])
def test_long_names_keep_their_extension(stem: str) -> None:
    out = safe_filename(stem + ".markdown")
    assert out.endswith(".markdown")
    assert len(out) <= 120
    assert len(out.encode("utf-8")) <= 240


def test_custom_max_chars() -> None:
    assert safe_filename("abcdefghij.md", max_chars=8) == "abcde.md"


@pytest.mark.parametrize(
    "name", ["../../x.md", "..\\..\\x.md", "\x00", "/", "\\", ".", "....", "a/../../b", '<>:"|?*', "\u202e"]
)
def test_never_a_path_never_empty_never_hidden(name: str) -> None:
    out = safe_filename(name)
    assert out
    assert "/" not in out
    assert "\\" not in out
    assert out not in {".", ".."}
    assert not out.startswith(".")
    assert all(unicodedata.category(c)[0] != "C" for c in out)
