"""Dataclasses that leave the ingest package: documents (one per page or file), their sections, and chunks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from ingest.limits import ReadLimits

SectionKind = Literal["text", "table", "rows"]


@dataclass(frozen=True)
class Section:
    """A stretch ``text[start:end]`` of a document under one heading path, which no chunk crosses.

    ``kind``: ``text`` is prose; ``table`` a Markdown table whose first two lines (header row and
    rule) every chunk of it repeats; ``rows`` self-describing lines ("header: value; ...") split
    between lines only.
    """

    start: int
    end: int
    headings: tuple[str, ...] = ()
    kind: SectionKind = "text"


@dataclass(frozen=True)
class Document:
    """Text of one file, or one page of a paged file (PDF).

    ``source`` is the path the text came from, as given by the caller.
    ``page`` is 1-based for paged formats and ``None`` otherwise.
    ``sections`` cover the text the parser found structure in; with none, the text is one section.
    """

    source: str
    text: str
    page: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    sections: tuple[Section, ...] = ()


@dataclass(frozen=True)
class Chunk:
    """A piece of a document's text, with where it came from.

    ``start``/``end`` are character offsets into ``Document.text`` of the document (page) the
    chunk was cut from, so ``doc.text[start:end] == chunk.text``, except for the second and later
    chunks of a table, whose text is the table's header row and rule followed by ``doc.text[start:end]``.
    ``index`` is the chunk's position among all chunks of its source file (0-based).
    ``heading`` is the path of headings above the chunk ("员工手册 > 第三章 休假 > 3.2 年假"), or "".
    """

    text: str
    source: str
    start: int
    end: int
    page: int | None = None
    index: int = 0
    heading: str = ""


@dataclass(frozen=True)
class OcrOptions:
    """How OCR runs for one file: off entirely, or bounded by pages and seconds."""

    enabled: bool = True
    max_pages: int = 100  # pages (or image frames) OCRed per file; a larger scan is refused up front
    max_seconds: float = 600.0  # OCR time per file; past it the file is refused with a message
    min_score: float = 0.5  # recognition confidence below which a line is dropped
    dpi: int = 200  # PDF pages are rendered at this resolution for OCR


@dataclass(frozen=True)
class LoadOptions:
    """What every loader is given besides the path: the read limits (size, unpacked archive, pages), OCR
    bounds and a progress callback (called with a short note such as "OCR page 3 (1/12)")."""

    limits: ReadLimits = ReadLimits()
    ocr: OcrOptions = OcrOptions()
    progress: Callable[[str], None] | None = None

    @property
    def max_bytes(self) -> int | None:
        """The file size limit (``limits.max_bytes``), as the read helpers take it."""
        return self.limits.max_bytes
