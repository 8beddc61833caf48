"""Loaders on small real files built in tmp_path."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from ingest import LOADERS, SUPPORTED_SUFFIXES, IngestError, OcrOptions, load_file, missing_requirements
from ingest.limits import ReadLimits
from ingest.loaders import LoaderSpec
from tests.ingest.pdfgen import pdf_bytes, write_pdf


def test_registry_shape() -> None:
    assert {".txt", ".md", ".pdf", ".docx", ".html", ".htm", ".csv", ".pptx", ".xlsx", ".eml"} <= set(
        SUPPORTED_SUFFIXES
    )
    assert all(isinstance(spec, LoaderSpec) and suffix in spec.suffixes for suffix, spec in LOADERS.items())
    assert missing_requirements() == {}


def test_text_and_markdown_verbatim(tmp_path) -> None:
    md = tmp_path / "notes.md"
    md.write_text("# 标题\n\nSome *markdown* text.\n", encoding="utf-8")
    (doc,) = load_file(md)
    assert doc.text == "# 标题\n\nSome *markdown* text.\n"
    assert [(s.headings, doc.text[s.start : s.end]) for s in doc.sections] == [
        (("标题",), "# 标题\n\nSome *markdown* text.\n")
    ]
    assert doc.source == str(md) and doc.page is None


def test_pdf_pages(tmp_path) -> None:
    path = write_pdf(tmp_path / "report.pdf", ["Alpha page talks about apples.", "", "Gamma page (pears)."])
    docs = load_file(path)
    assert [d.page for d in docs] == [1, 3]  # the blank page is skipped
    assert "apples" in docs[0].text and "pears" in docs[1].text and "apples" not in docs[1].text


def test_pdf_page_limit_counts_every_page_before_reading(tmp_path) -> None:
    """The limits reach the PDF loader in its options: it counts pages (blank ones too) before extracting."""
    path = write_pdf(tmp_path / "long.pdf", ["One.", "Two.", "", "Four."])
    with pytest.raises(IngestError, match="4 pages, above the 3 page limit"):
        load_file(path, limits=ReadLimits(max_pages=3))
    assert len(load_file(path, limits=ReadLimits(max_pages=4))) == 3


def test_corrupt_pdf(tmp_path) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(pdf_bytes(["Some text here."])[:60])
    with pytest.raises(IngestError) as info:
        load_file(path)
    assert "broken.pdf" in str(info.value) and info.value.hint


def test_pdf_without_text_needs_ocr(tmp_path) -> None:
    path = write_pdf(tmp_path / "scan.pdf", ["", ""])
    with pytest.raises(IngestError, match="OCR is turned off") as info:
        load_file(path, ocr=OcrOptions(enabled=False))
    assert "KB_OCR" in info.value.hint


def test_docx(tmp_path) -> None:
    docx = pytest.importorskip("docx")
    document = docx.Document()
    document.add_paragraph("第一段：这是中文段落。")
    document.add_paragraph("Second paragraph in English.")
    table = document.add_table(rows=2, cols=2)
    for (r, c), value in {(0, 0): "名称", (0, 1): "Price", (1, 0): "苹果", (1, 1): "3.5"}.items():
        table.cell(r, c).text = value
    path = tmp_path / "doc.docx"
    document.save(path)
    (doc,) = load_file(path)
    assert "第一段：这是中文段落。" in doc.text and "Second paragraph in English." in doc.text
    assert "| 名称 | Price |\n| --- | --- |\n| 苹果 | 3.5 |" in doc.text


def test_html_drops_script_and_style(tmp_path) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>标题</title><style>p{color:red}</style><script>var secret=1;</script></head>"
        "<body><h1>Heading</h1><p>可见的文本。Visible text.</p><script>alert('x')</script></body></html>",
        encoding="utf-8",
    )
    (doc,) = load_file(path)
    assert "Heading" in doc.text and "可见的文本。Visible text." in doc.text
    assert "secret" not in doc.text and "alert" not in doc.text and "color" not in doc.text


def test_csv_rows_as_pairs(tmp_path) -> None:
    path = tmp_path / "prices.csv"
    path.write_bytes("名称,价格\n苹果,3.5\n香蕉,2\n".encode("gbk"))
    (doc,) = load_file(path)
    assert doc.text == "名称: 苹果; 价格: 3.5\n名称: 香蕉; 价格: 2"


def test_xlsx_and_pptx(tmp_path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    pptx = pytest.importorskip("pptx")
    book = openpyxl.Workbook()
    book.active.append(["name", "price"])
    book.active.append(["pear", 2])
    book.save(tmp_path / "t.xlsx")
    assert "name: pear; price: 2" in load_file(tmp_path / "t.xlsx")[0].text
    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "季度报告"
    slide.placeholders[1].text = "Revenue grew 15%."
    deck.save(tmp_path / "t.pptx")
    text = load_file(tmp_path / "t.pptx")[0].text
    assert "季度报告" in text and "Revenue grew 15%." in text


def test_eml(tmp_path) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.com", "b@example.com", "会议通知"
    message.set_content("会议改到周五。\nThe meeting moved to Friday.\n")
    path = tmp_path / "m.eml"
    path.write_bytes(bytes(message))
    (doc,) = load_file(path)
    assert "Subject: 会议通知" in doc.text and "会议改到周五。" in doc.text and "Friday" in doc.text


def test_unsupported_suffix(tmp_path) -> None:
    path = tmp_path / "drawing.dwg"
    path.write_bytes(b"AC1032....")
    with pytest.raises(IngestError, match=r"\.pdf") as info:
        load_file(path)
    assert "drawing.dwg" in str(info.value)


def test_parser_failure_is_wrapped(tmp_path) -> None:
    path = tmp_path / "fake.docx"
    path.write_bytes(b"this is not a zip file at all")
    with pytest.raises(IngestError) as info:
        load_file(path)
    assert "fake.docx" in str(info.value) and "re-save" in str(info.value)
