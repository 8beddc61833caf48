"""Rendering one PDF page with the cited span highlighted: real PDFs, real PDFium, pixels checked."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from kb_assistant.web.pdfview import RenderError, find_spans, page_count, render_page
from tests.ingest.pdfgen import write_pdf

LINE = "The emergency diesel generator is tested every fourteen days by the facilities team."


def tinted_rows(png: bytes) -> list[int]:
    """Rows holding highlight-coloured pixels (white under translucent amber: R,G high, B low)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    w, h = image.size
    px = image.load()
    return [y for y in range(h) if any(px[x, y][0] > 240 and 215 < px[x, y][1] < 250 and px[x, y][2] < 190
                                       for x in range(0, w, 2))]


def test_the_cited_span_is_highlighted_on_its_own_line(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "f.pdf", ["Facilities manual. Chapter one covers the office layout.", LINE])
    shown = render_page(pdf, 2, "tested every fourteen days")
    assert (shown.page, shown.pages, shown.highlighted) == (2, 2, 1)
    rows = tinted_rows(shown.png)
    height = Image.open(io.BytesIO(shown.png)).size[1]
    # the text line sits at y = 720 of a 792-point page, measured from the bottom
    assert rows and all(abs(y / height - (792 - 724) / 792) < 0.03 for y in rows), rows[:5]
    plain = render_page(pdf, 2, "")
    assert plain.highlighted == 0 and not tinted_rows(plain.png)


def test_a_span_not_on_the_page_draws_nothing(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "f.pdf", [LINE])
    assert render_page(pdf, 1, "quarterly budget review").highlighted == 0


def test_matching_ignores_line_breaks_spacing_and_width() -> None:
    page = list("The emergency diesel\r\ngenerator is  tested")
    (a, b), = find_spans(page, "emergency diesel generator")
    assert "".join(page[a:b]).replace("\r\n", " ") == "emergency diesel generator"
    assert find_spans(list("ＡＢＣ１２３ def"), "abc123") == [(0, 6)]  # full-width vs ASCII
    # hyphenated across lines in the PDF, whole in the indexed text: its pieces are still found
    assert len(find_spans(list("backup is rota-\nted weekly. Logs are kept for ninety days."),
                          "backup is rotated weekly. Logs are kept for ninety days.")) == 1


def test_a_2000_page_pdf_renders_the_asked_page(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "big.pdf", [f"This is page number {i} of the big manual." for i in range(1, 2001)])
    assert page_count(pdf) == 2000
    shown = render_page(pdf, 1500, "page number 1500 of")
    assert (shown.page, shown.pages, shown.highlighted) == (1500, 2000, 1)
    assert render_page(pdf, 1501, "page number 1500 of").highlighted == 0


def test_broken_files_and_pages_give_a_message(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "f.pdf", [LINE])
    with pytest.raises(RenderError, match="has 1 pages, not a page 3"):
        render_page(pdf, 3, "")
    pdf.write_bytes(b"%PDF-1.4\n this is not a pdf any more")
    with pytest.raises(RenderError, match="f.pdf cannot be opened"):
        render_page(pdf, 1, "")


def test_a_span_over_several_lines_gets_one_box_a_line(tmp_path: Path) -> None:
    from ingest import load_file
    from tests.web.pdfdoc import pdf_with_lines

    pdf = tmp_path / "manual.pdf"
    pdf.write_bytes(pdf_with_lines([("Generators", [
        "Standby power keeps the data centre running during outages.",
        "The emergency diesel generator is tested every fourteen days",
        "by the facilities team, under load, for thirty minutes.",
        "Fuel is topped up after every test."])]))
    text = load_file(pdf)[0].text  # what the indexer stored (pypdf's text layer)
    start = text.index("The emergency")
    quote = text[start: text.index("minutes.") + len("minutes.")]
    shown = render_page(pdf, 1, quote)
    assert shown.highlighted == 2
    rows = tinted_rows(shown.png)
    height = Image.open(io.BytesIO(shown.png)).size[1]
    lines = {round((792 - 700 + 16 * k) / 792 * height) for k in (1, 2)}  # baselines of lines 2 and 3
    assert all(any(abs(y - line) < 14 for y in rows) for line in lines)
    assert not any(abs(y - round((792 - 700) / 792 * height)) < 4 for y in rows)  # line 1 stays plain
