"""Scanned PDF pages and images are read by RapidOCR, within limits, with a clear outcome for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest import ChineseTextSplitter, IngestError, OcrOptions, load_file
from tests.ingest.docgen import char_error_rate, render_text_image, write_scanned_pdf
from tests.ingest.pdfgen import write_pdf

pytest.importorskip("rapidocr_onnxruntime")

PAGE_1 = ["第三章 休假", "员工工作满一年后，每年享有五天带薪年假。", "年假应在当年度内休完。"]
PAGE_2 = ["3.2 病假", "病假需提供医院证明，期间按基本工资的百分之八十发放。"]
CER_BOUND = 0.05  # rendered Noto Sans SC at 28 px reads at CER 0 here; leave room for other CPUs


def _mixed_pdf(tmp_path: Path) -> Path:
    """Page 1 has a text layer, pages 2-3 are scans, page 4 is a blank scan."""
    from pypdf import PdfReader, PdfWriter

    text = write_pdf(tmp_path / "text.pdf", ["Alpha page has a text layer."])
    scans = write_scanned_pdf(tmp_path / "scan.pdf", [PAGE_1, PAGE_2, None])
    writer = PdfWriter()
    for source in (text, scans):
        for page in PdfReader(source).pages:
            writer.add_page(page)
    out = tmp_path / "mixed.pdf"
    with open(out, "wb") as f:
        writer.write(f)
    return out


def test_scanned_pages_read_and_text_pages_untouched(tmp_path: Path) -> None:
    notes: list[str] = []
    docs = load_file(_mixed_pdf(tmp_path), progress=notes.append)
    assert notes == ["OCR page 2 (1/3)", "OCR page 3 (2/3)", "OCR page 4 (3/3)"]  # page 1 never OCRed
    assert [d.page for d in docs] == [1, 2, 3]  # the blank scan gives no document
    assert docs[0].text.strip() == "Alpha page has a text layer." and "ocr" not in docs[0].metadata
    assert char_error_rate("\n".join(PAGE_1), docs[1].text) < CER_BOUND
    assert char_error_rate("\n".join(PAGE_2), docs[2].text) < CER_BOUND
    # numbered headings in the OCR text become heading paths, carried across pages
    chunks = ChineseTextSplitter(chunk_size=400, chunk_overlap=0).split(docs)
    by_page = {c.page: c.heading for c in chunks if "病假" in c.text or "带薪" in c.text}
    assert by_page == {2: "第三章休假", 3: "第三章休假 > 3.2病假"}


def test_png_and_rotated_image(tmp_path: Path) -> None:
    lines = ["B 型号的功率为 200W", "价格为二十元"]
    for angle in (0, 90):
        path = tmp_path / f"spec{angle}.png"
        render_text_image(lines, angle=angle).save(path)
        (doc,) = load_file(path)
        assert char_error_rate("\n".join(lines), doc.text) < CER_BOUND
        assert doc.metadata.get("rotated", "0") == ("0" if angle == 0 else "270")
        assert doc.text.index("200") < doc.text.index("二十")  # reading order kept


def test_bad_images_give_one_clear_line(tmp_path: Path) -> None:
    from PIL import Image

    blank = tmp_path / "blank.jpg"
    Image.new("RGB", (400, 300), "white").save(blank)
    with pytest.raises(IngestError, match="OCR found no text"):
        load_file(blank)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(IngestError, match="cannot be decoded") as info:
        load_file(corrupt)
    assert str(info.value).startswith("cannot index corrupt.png:") and "\n" not in str(info.value)


def test_ocr_off_and_page_limit(tmp_path: Path) -> None:
    image = tmp_path / "a.webp"
    render_text_image(["年假五天"]).save(image)
    with pytest.raises(IngestError, match="OCR is turned off"):
        load_file(image, ocr=OcrOptions(enabled=False))
    scan = write_scanned_pdf(tmp_path / "long.pdf", [["第一页"], ["第二页"], ["第三页"]])
    with pytest.raises(IngestError, match="3 pages need OCR, more than the 2 allowed") as info:
        load_file(scan, ocr=OcrOptions(max_pages=2))
    assert "KB_OCR_MAX_PAGES" in info.value.hint
    with pytest.raises(IngestError, match="OCR took over"):
        load_file(scan, ocr=OcrOptions(max_seconds=1e-9))


def test_low_confidence_lines_dropped() -> None:
    from ingest.ocr import ocr_image

    image = render_text_image(["年假五天"])
    assert [line.text for line in ocr_image(image).lines] == ["年假五天"]
    strict = ocr_image(image, min_score=1.01)  # no recognition is that sure
    assert strict.lines == () and strict.dropped == 1
