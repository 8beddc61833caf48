"""Structured formats: Word and PowerPoint read directly, the rest through unstructured's elements.

Word: python-docx gives each paragraph's style, so "Title" / "Heading N" set the heading level exactly
(unstructured reports both "Title" and "Heading 1" as depth 0), and unstyled numbered lines
("第三章 休假", common in Chinese documents) are placed by their numbering. PowerPoint: python-pptx,
each slide's title heads its text and tables. Markdown: its source kept verbatim, sections from its
ATX headings and pipe tables. html, epub, odt, rtf: unstructured's Title / Table / text elements, with
its English classifier corrected on Chinese text (see ``ingest.structure``).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import Any

from ingest.encoding import read_bytes
from ingest.structure import TextBuilder, chinese_title_verdict, looks_like_heading
from ingest.types import Document, LoadOptions, Section


def built_document(path: str, builder: TextBuilder, fmt: str, **metadata: str) -> list[Document]:
    """The one Document of a file whose text and sections ``builder`` holds."""
    text = builder.text()
    return [Document(path, text, metadata={"format": fmt, **metadata}, sections=tuple(builder.sections))]


def _unique(cells: Any) -> list[str]:
    """python-docx repeats a merged cell's text in every cell it spans: keep it once."""
    out: list[str] = []
    for cell in cells:
        if not out or cell != out[-1]:
            out.append(cell)
    return out


def _docx_level(style_name: str) -> int | None:
    name = style_name.lower()
    if name == "title":
        return 0
    for prefix in ("heading ", "标题 "):
        if name.startswith(prefix) and name[len(prefix) :].strip().isdigit():
            return int(name[len(prefix) :])
    return None


def load_docx(path: str, options: LoadOptions) -> list[Document]:
    """Paragraphs under their heading path (styles, else numbering); tables as Markdown tables."""
    from ingest.loaders import need

    docx = need(path, "python-docx")
    document = docx.Document(io.BytesIO(read_bytes(path, max_bytes=options.max_bytes)))
    builder = TextBuilder()
    # Paragraph.style scans every style per call (4x the whole parse here): map ids to names once
    # and read each paragraph's style id from its XML (python-docx's CT_P.style)
    style_names = {style.style_id: str(style.name) for style in document.styles}
    for item in document.iter_inner_content():
        if hasattr(item, "rows"):
            rows = [_unique(cell.text.strip() for cell in row.cells) for row in item.rows]
            builder.table(rows)
            continue
        text = item.text.strip()
        level = _docx_level(style_names.get(item._p.style or "", ""))
        if level is not None:
            builder.heading(text, level)
        elif looks_like_heading(text):
            builder.heading(text)
        elif not builder.title(text):
            builder.paragraph(text)
    return built_document(path, builder, "docx")


def load_pptx(path: str, options: LoadOptions) -> list[Document]:
    """Each slide under its title: text frames, tables (Markdown) and speaker notes."""
    from ingest.loaders import need

    pptx = need(path, "python-pptx")
    deck = pptx.Presentation(io.BytesIO(read_bytes(path, max_bytes=options.max_bytes)))
    builder = TextBuilder()
    for slide in deck.slides:
        title_shape = slide.shapes.title
        title = title_shape.text_frame.text.strip() if title_shape is not None else ""
        title_id = title_shape.shape_id if title_shape is not None else None
        builder.reset()
        if title:
            builder.heading(title, 1)
        for shape in slide.shapes:
            if shape.has_text_frame and shape.shape_id != title_id:
                builder.paragraph(shape.text_frame.text)
            if shape.has_table:
                builder.table([[c.text for c in row.cells] for row in shape.table.rows])
        if slide.has_notes_slide:
            builder.paragraph(slide.notes_slide.notes_text_frame.text)
    return built_document(path, builder, "pptx")


def html_table_rows(markup: str) -> list[list[str]]:
    """Rows of cell texts from an HTML table (unstructured's ``text_as_html``)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "lxml")
    return [
        [" ".join(c.get_text(" ").split()) for c in tr.find_all(["th", "td"], recursive=False)]
        for tr in soup.find_all("tr")
    ]


def build_from_elements(elements: list[Any], builder: TextBuilder) -> None:
    """unstructured's elements into headings, paragraphs and tables.

    Its classifier is English: on Chinese text it calls numbered headings written as plain paragraphs
    narrative text, and sentences that lack a final 。 titles. A Title carrying a ``category_depth``
    came from markup (h1-h6) and is trusted; other Titles that read as Chinese sentences become
    paragraphs, and any text that looks like a numbered Chinese heading becomes one.
    """
    for element in elements:
        kind = type(element).__name__
        text = (element.text or "").strip()
        metadata = element.metadata
        if kind == "Table":
            html = getattr(metadata, "text_as_html", None)
            rows = html_table_rows(html) if html else []
            if rows:
                builder.table(rows)
            else:
                builder.paragraph(text)
        elif kind in ("Header", "Footer", "PageBreak", "Image") or not text:
            continue
        elif kind == "Title":
            depth = getattr(metadata, "category_depth", None)
            if depth is not None:
                builder.heading(text, int(depth) + 1)
            elif chinese_title_verdict(text) is False:
                builder.paragraph(text)
            else:
                builder.heading(text)
        elif looks_like_heading(text):
            builder.heading(text)
        else:
            builder.paragraph(text)


def load_elements(path: str, options: LoadOptions, fmt: str) -> list[Document]:
    """Any format unstructured partitions (html, epub, odt, rtf)."""
    from ingest.elements import partition

    elements = partition(path, fmt, max_bytes=options.max_bytes)
    builder = TextBuilder()
    build_from_elements(elements, builder)
    return built_document(path, builder, fmt)


_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_MD_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


@dataclass
class MarkdownState:
    """Where Markdown source stands at the end of a block: the headings open above it and whether a
    code fence is open, so a large file streamed block by block keeps its heading paths."""

    headings: list[tuple[int, str]] = field(default_factory=list)  # (level, text), outermost first
    fence: bool = False


def markdown_sections(text: str, state: MarkdownState | None = None) -> list[Section]:
    """Sections of Markdown source: ATX headings (outside code fences) start a new path; a pipe
    table (header, rule, rows) is a table section. ``state`` (updated) carries the open headings and
    code fence from the block before, for a file read in blocks."""
    state = state if state is not None else MarkdownState()
    sections: list[Section] = []
    stack = state.headings
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    path: tuple[str, ...] = tuple(h[1] for h in stack)
    open_at, fence, i, heading_line = 0, state.fence, 0, ""

    def close(end: int) -> None:
        body = text[open_at:end].strip()
        if body and body != heading_line:  # a heading alone is no chunk (see TextBuilder._close)
            sections.append(Section(open_at, end, path))

    while i < len(lines):
        line = lines[i].rstrip("\n")
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
        heading = None if fence else _MD_HEADING.match(line)
        if heading:
            close(starts[i])
            level = len(heading.group(1))
            stack[:] = [h for h in stack if h[0] < level] + [(level, heading.group(2).strip())]
            path, open_at, heading_line = tuple(h[1] for h in stack), starts[i], line.strip()
        elif not fence and line.lstrip().startswith("|") and i + 1 < len(lines) and _MD_RULE.match(lines[i + 1]):
            close(starts[i])
            j = i + 2
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                j += 1
            sections.append(Section(starts[i], starts[j] - (1 if lines[j - 1].endswith("\n") else 0), path, "table"))
            open_at, i, heading_line = starts[j], j, ""
            continue
        i += 1
    close(len(text))
    state.fence = fence
    return sections


def load_markdown(path: str, options: LoadOptions) -> list[Document]:
    """Markdown source kept verbatim (offsets match the file, as when a large one is streamed), with
    its headings as paths and its pipe tables as tables."""
    from ingest.encoding import read_text

    text = read_text(path, max_bytes=options.max_bytes)
    return [Document(path, text, metadata={"format": "markdown"}, sections=tuple(markdown_sections(text)))]
