"""How the indexer reads a file within its limits, and large text files block by block.

Apart from ``indexer.py`` (which files a run writes, in which batches, with which outcome) because the
streamed path has rules of its own: a split-only counting pass holds the chunk limit before anything
is embedded, and each block's chunks carry offsets into the whole file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest import OcrOptions, Splitter
from ingest.limits import ReadLimits

from ..settings import Settings


@dataclass(frozen=True)
class IndexLimits:
    """How the indexer reads and batches: from the settings, passed explicitly."""

    max_file_bytes: int
    batch_size: int
    stream_block_bytes: int  # text files larger than this are streamed block by block
    read: ReadLimits | None = None  # archives and pages; None: ingest's defaults with max_file_bytes
    max_chunks: int = Settings.model_fields["max_chunks_per_file"].default
    ocr: OcrOptions | None = None  # OCR of scanned pages and images: on/off and its per-file limits
    heading_prefix: bool = True  # embed and keyword-index each chunk with its heading path in front

    @classmethod
    def from_settings(cls, settings: Settings, stream_block_bytes: int) -> IndexLimits:
        read = ReadLimits(
            max_bytes=settings.max_file_mb << 20, max_unpacked_bytes=settings.max_unpacked_mb << 20,
            max_archive_entries=settings.max_archive_entries, max_pages=settings.max_pages_per_file,
        )
        return cls(settings.max_file_mb << 20, settings.embed_batch_size, stream_block_bytes, read,
                   settings.max_chunks_per_file, settings.ocr_options(), settings.heading_prefix)

    @property
    def read_limits(self) -> ReadLimits:
        return self.read or ReadLimits(max_bytes=self.max_file_bytes)


def vanished(path: Path) -> str:
    """Why a file failed, when it was deleted while the run read it (the read-ahead thread hashes and parses
    a few files early, so this is a plain race with whoever deletes it): "" when it is still there."""
    if os.path.lexists(path):
        return ""
    return f"cannot index {path.name}: it was deleted while being indexed (index again if it comes back)"


def is_streamed(path: Path, limits: IndexLimits) -> bool:
    """A text file large enough to be read block by block rather than whole (``stat`` may raise)."""
    from ingest import STREAMABLE_SUFFIXES

    return path.suffix.lower() in STREAMABLE_SUFFIXES and path.stat().st_size > limits.stream_block_bytes


def check_chunks(path: Path, n: int, limit: int, *, more: bool = False) -> None:
    """Refuse a file that splits into more chunks than the limit (before any is embedded)."""
    from ingest import IngestError

    if n > limit:
        raise IngestError(
            path, f"it splits into {f'more than {limit}' if more else n} chunks, above the {limit} chunk limit",
            "split the file, or raise KB_MAX_CHUNKS_PER_FILE",
        )


def count_streamed(path: Path, splitter: Splitter, limits: IndexLimits) -> int:
    """A large text file's chunk count, from a split-only pass (splitting is ~1000x faster than
    embedding), so the chunk limit holds before anything is embedded."""
    n = 0
    for _offset, doc in _blocks(path, limits):
        n += len(splitter.split_document(doc))
        if n > limits.max_chunks:
            check_chunks(path, n, limits.max_chunks, more=True)
    return n


def streamed_chunks(path: Path, splitter: Splitter, limits: IndexLimits) -> Iterator[list[Any]]:
    """Each block's chunks (a list, empty for a block without text), with offsets into the whole file
    and indexes that continue across blocks: memory holds one block at a time."""
    from ingest import Chunk

    source, n = str(path), 0
    for offset, doc in _blocks(path, limits):
        chunks = [
            Chunk(c.text, source, c.start + offset, c.end + offset, page=None, index=n + i, heading=c.heading)
            for i, c in enumerate(splitter.split_document(doc))
        ]
        n += len(chunks)
        yield chunks


def _blocks(path: Path, limits: IndexLimits) -> Iterator[tuple[int, Any]]:
    """The blocks of a large text file; its size is checked against the limit before reading."""
    from ingest import stream_text

    return stream_text(path, block_bytes=limits.stream_block_bytes, max_bytes=limits.max_file_bytes)
