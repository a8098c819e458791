from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from ingest.loaders import LoadError, load_bytes, load_path


def make_pdf(pages: list[str]) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def make_docx(paragraphs: list[str]) -> bytes:
    import docx

    d = docx.Document()
    for p in paragraphs:
        d.add_paragraph(p)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def test_pdf_keeps_page_numbers_and_offsets() -> None:
    doc = load_bytes(make_pdf(["Page one talks about iron.", "Page two talks about paint."]), "t.pdf")
    assert [p.page for p in doc.pages] == [1, 2]
    assert "iron" in doc.text[doc.pages[0].start : doc.pages[0].end]
    assert "paint" in doc.text[doc.pages[1].start : doc.pages[1].end]


def test_scanned_pdf_without_text_is_refused() -> None:
    with pytest.raises(LoadError, match="no extractable text"):
        load_bytes(make_pdf(["", ""]), "scan.pdf")


def test_corrupt_pdf_is_a_clear_error() -> None:
    data = make_pdf(["Some text here."])
    with pytest.raises(LoadError, match=r"damaged|cannot"):
        load_bytes(data[: len(data) // 3], "scan.pdf")


def test_docx_paragraphs() -> None:
    doc = load_bytes(make_docx(["Heading", "First paragraph.", "Second paragraph."]), "a.docx")
    assert doc.text == "Heading\n\nFirst paragraph.\n\nSecond paragraph."
    assert doc.pages[0].page is None


def test_docx_zip_bomb_is_refused() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("word/document.xml", b"0" * (50 * 1024 * 1024))
    with pytest.raises(LoadError, match="zip bomb"):
        load_bytes(buf.getvalue(), "bomb.docx")


def test_html_drops_scripts_and_styles() -> None:
    html = (
        b"<html><head><title>T</title><style>.x{color:red}</style></head>"
        b"<body><script>evil()</script><p>Visible text.</p></body></html>"
    )
    doc = load_bytes(html, "p.html")
    assert doc.text == "Visible text."


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("caf\u00e9 \u2014 ok".encode("utf-16"), "caf\u00e9 \u2014 ok"),
        ("한국어 문서입니다. 테스트 문장이 조금 더 길어야 감지됩니다.".encode("cp949"), "한국어 문서입니다."),
    ],
)
def test_text_encodings_are_detected(data: bytes, expected: str) -> None:
    assert load_bytes(data, "a.txt").text.startswith(expected)


def test_binary_renamed_txt_is_refused() -> None:
    with pytest.raises(LoadError, match="does not look like text"):
        load_bytes(bytes(range(256)) * 20, "x.txt")


@pytest.mark.parametrize("data", [b"", b"   \n\n  "])
def test_empty_files_are_refused(data: bytes) -> None:
    with pytest.raises(LoadError, match=r"empty|no extractable text"):
        load_bytes(data, "e.md")


def test_unsupported_type() -> None:
    with pytest.raises(LoadError, match=r"unsupported file type '\.exe'"):
        load_bytes(b"MZ", "setup.exe")


def test_size_limit_checked_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * 2048)
    with pytest.raises(LoadError, match="over the"):
        load_path(big, max_bytes=1024)
