"""Dataclasses that leave the ingest package: documents (one per page or file) and chunks."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Document:
    """Text of one file, or one page of a paged file (PDF).

    ``source`` is the path the text came from, as given by the caller.
    ``page`` is 1-based for paged formats and ``None`` otherwise.
    """

    source: str
    text: str
    page: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Chunk:
    """A piece of a document's text, with where it came from.

    ``start``/``end`` are character offsets into ``Document.text`` of the document (page) the
    chunk was cut from, so ``doc.text[start:end] == chunk.text``.
    ``index`` is the chunk's position among all chunks of its source file (0-based).
    """

    text: str
    source: str
    start: int
    end: int
    page: int | None = None
    index: int = 0
