"""Build real office files, rendered text images and scanned PDFs for ingest tests and bench/."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

# A heading tree as nested lists: ("heading", level, text) | ("para", text) | ("table", rows)
Block = tuple[Any, ...]

HANDBOOK: list[Block] = [
    ("heading", 0, "员工手册"),
    ("heading", 1, "第三章 休假"),
    ("heading", 2, "3.2 年假"),
    ("para", "员工工作满一年后，每年享有五天带薪年假，年假应在当年度内休完，未休部分可以顺延至次年第一季度。"),
    ("heading", 2, "3.3 病假"),
    ("para", "病假需提供医院证明，病假期间按基本工资的百分之八十发放。"),
    ("heading", 1, "第四章 设备"),
    ("table", [["型号", "功率", "价格"], ["A 型", "100W", "10元"], ["B 型", "200W", "20元"]]),
]


def write_docx(path: Path, blocks: list[Block], *, styled: bool = True) -> Path:
    """A .docx; ``styled=False`` writes headings as plain Normal paragraphs (as many Chinese docs do)."""
    import docx

    d = docx.Document()
    for block in blocks:
        if block[0] == "heading":
            if styled:
                d.add_heading(block[2], block[1])
            else:
                d.add_paragraph(block[2])
        elif block[0] == "para":
            d.add_paragraph(block[1])
        else:
            rows = block[1]
            table = d.add_table(rows=len(rows), cols=len(rows[0]))
            for i, row in enumerate(rows):
                for j, value in enumerate(row):
                    table.cell(i, j).text = value
    d.save(str(path))
    return path


def write_markdown(path: Path, blocks: list[Block]) -> Path:
    lines = []
    for block in blocks:
        if block[0] == "heading":
            lines.append("#" * (block[1] + 1) + " " + block[2])
        elif block[0] == "para":
            lines.append(block[1])
        else:
            rows = block[1]
            lines.append("| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]))
            lines[-1] += "".join("\n| " + " | ".join(r) + " |" for r in rows[1:])
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_long_markdown(path: Path, chapters: int = 5) -> Path:
    """A Markdown handbook long enough to stream in small blocks: chapters of numbered sections of
    paragraphs, and in each chapter a code fence of "# ..." comment lines and blank lines (not headings)."""
    parts = ["# 员工手册"]
    for ch in range(1, chapters + 1):
        parts.append(f"## 第{ch}章 制度{ch}")
        for sec in range(1, 4):
            parts.append(f"### {ch}.{sec} 条款")
            parts += [f"第{ch}章第{sec}节第{k}段：员工应遵守公司制度，违者按规定处理。" for k in range(30)]
            if sec == 2:
                parts.append("```\n" + "\n\n".join(f"# 注释 {ch}-{i}，不是标题" for i in range(60)) + "\n```")
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return path


def write_html(path: Path, blocks: list[Block]) -> Path:
    parts = ["<html><head><title>t</title></head><body>"]
    for block in blocks:
        if block[0] == "heading":
            parts.append(f"<h{block[1] + 1}>{block[2]}</h{block[1] + 1}>")
        elif block[0] == "para":
            parts.append(f"<p>{block[1]}</p>")
        else:
            rows = block[1]
            head = "".join(f"<th>{c}</th>" for c in rows[0])
            body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows[1:])
            parts.append(f"<table><tr>{head}</tr>{body}</table>")
    parts.append("</body></html>")
    path.write_text("".join(parts), encoding="utf-8")
    return path


def write_pptx(path: Path, slides: list[tuple[str, list[str], list[list[str]] | None]]) -> Path:
    """Slides of ``(title, bullet lines, table rows or None)``."""
    import pptx
    from pptx.util import Inches

    deck = pptx.Presentation()
    for title, lines, rows in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1 if lines else 5])
        slide.shapes.title.text = title
        if lines:
            slide.placeholders[1].text = "\n".join(lines)
        if rows:
            shape = slide.shapes.add_table(len(rows), len(rows[0]), Inches(1), Inches(2), Inches(6), Inches(2))
            for i, row in enumerate(rows):
                for j, value in enumerate(row):
                    shape.table.cell(i, j).text = value
    deck.save(str(path))
    return path


@functools.cache
def cjk_font_path() -> str:
    """Noto Sans SC from the ``pylopdf-fonts-zh-cn`` wheel (requirements-dev.txt)."""
    import pylopdf_fonts_zh_cn

    return str(Path(pylopdf_fonts_zh_cn.__file__).parent / "NotoSansSC-Regular.otf")


def render_text_image(lines: list[str], *, size: int = 28, width: int = 1000, angle: int = 0) -> Any:
    """A white page image with ``lines`` in black (a PIL Image), optionally rotated by ``angle``."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(cjk_font_path(), size)
    height = 80 + len(lines) * int(size * 1.8)
    image = Image.new("RGB", (width, max(height, 200)), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((40, 40 + i * int(size * 1.8)), line, fill="black", font=font)
    return image.rotate(angle, expand=True, fillcolor="white") if angle else image


def write_scanned_pdf(path: Path, pages: list[list[str] | None]) -> Path:
    """A PDF with no text layer: each page one rendered image (``None`` -> a blank page)."""
    from PIL import Image

    images = [render_text_image(p) if p else Image.new("RGB", (1000, 600), "white") for p in pages]
    images[0].save(str(path), "PDF", save_all=True, append_images=images[1:], resolution=100.0)
    return path


def char_error_rate(reference: str, hypothesis: str) -> float:
    """Levenshtein distance over characters (whitespace ignored) divided by the reference length."""
    ref = "".join(reference.split())
    hyp = "".join(hypothesis.split())
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        current = [i]
        for j, h in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1] / max(len(ref), 1)
