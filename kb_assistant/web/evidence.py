"""Where a cited passage sits in its document: the file behind it, the text around it, its headings.

A citation only ever opens a file the knowledge base recorded for the document (the path in its
store), never a path from the browser, and only while the knowledge base still holds it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import KBError
from ..types import Source

CONTEXT_CHARS = 1200  # shown before and after the cited span


class EvidenceError(KBError):
    """The cited document cannot be shown; the message says why and what to do."""


@dataclass(frozen=True)
class Passage:
    """The cited span with the text around it and the headings it sits under."""

    before: str
    span: str
    after: str
    headings: tuple[str, ...]
    more_before: bool
    more_after: bool
    note: str = ""  # e.g. the file changed since it was indexed


def document_path(source: str, indexed: set[str], kb_name: str) -> Path:
    """The cited file, checked: still in the knowledge base and still on disk."""
    name = Path(source).name
    if source not in indexed:
        raise EvidenceError(f"{name} was removed from knowledge base {kb_name!r} after this answer: "
                            "its passage is shown as it was; index the file again to open it")
    path = Path(source)
    if not path.is_file():
        raise EvidenceError(f"{name} is no longer at {source} (moved or deleted since it was indexed): "
                            f"put it back, or run `kb index FOLDER --kb {kb_name} --prune` to drop it")
    return path


# -- headings ------------------------------------------------------------------------------------

_CN_NUM = "一二三四五六七八九十百零〇两"
_HEADINGS = (
    # (pattern, level) - level None: the number of '#' or of dotted numbers decides
    (re.compile(r"^(#{1,6})\s+(\S.*?)\s*#*\s*$"), None),
    (re.compile(rf"^第[{_CN_NUM}\d]+[章篇部]\s*\S.*$|^第[{_CN_NUM}\d]+[章篇部]$"), 1),
    (re.compile(rf"^第[{_CN_NUM}\d]+节.*$"), 2),
    (re.compile(rf"^[{_CN_NUM}]+、\S.{{0,40}}$"), 2),
    (re.compile(rf"^[（(][{_CN_NUM}]+[）)]\S.{{0,40}}$"), 3),
    (re.compile(r"^(\d{1,2}(?:\.\d{1,2}){0,4})\.?\s+(\S.{0,70})$"), None),
)
_SENTENCE_END = re.compile(r"[。；;，,：:！？!?]$|\.$")


def heading_of(line: str) -> tuple[int, str] | None:
    """``(level, text)`` when the line looks like a heading: markdown ``#``, 第一章, 一、, 1.2 Title."""
    line = line.strip()
    if not line or len(line) > 80:
        return None
    for pattern, level in _HEADINGS:
        m = pattern.match(line)
        if not m:
            continue
        if pattern is _HEADINGS[0][0]:
            return len(m.group(1)), m.group(2)
        if level is None:  # numbered: "2.3 Backups" is a heading, "1. Buy milk." is a list item
            if _SENTENCE_END.search(line):
                return None
            return m.group(1).count(".") + 1, line
        return level, line
    return None


def heading_path(text: str) -> tuple[str, ...]:
    """The headings in force at the end of ``text``, outermost first."""
    stack: list[tuple[int, str]] = []
    for line in text.splitlines():
        found = heading_of(line)
        if found:
            level = found[0]
            stack = [h for h in stack if h[0] < level] + [found]
    return tuple(h[1] for h in stack)


def _leading_headings(span: str) -> str:
    """The heading lines a span starts with (a chunk often begins with its section's title)."""
    lines = []
    for line in span.splitlines():
        if line.strip() and heading_of(line) is None:
            break
        lines.append(line)
    return "\n" + "\n".join(lines)


# -- passages ------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def _document_text(path: str, _mtime: int, _size: int, max_bytes: int) -> str:
    from ingest import IngestError, load_file

    try:
        docs = load_file(path, max_bytes=max_bytes)
    except IngestError as exc:
        raise EvidenceError(str(exc)) from None
    return "\n\n".join(d.text for d in docs if d.page is None) or docs[0].text


def _streamed_window(path: Path, start: int, end: int, block_bytes: int) -> tuple[str, int, tuple[str, ...]]:
    """For files too big to hold: the block around the span, its offset and the headings before it."""
    from ingest import stream_text

    headings: list[tuple[int, str]] = []
    previous = ""
    for offset, doc in stream_text(path, block_bytes=block_bytes):
        if offset + len(doc.text) >= end:
            window_start = max(0, offset - len(previous))
            text = previous + doc.text
            before = text[: start - window_start]
            stack = list(headings)
            for line in before.splitlines():
                found = heading_of(line)
                if found:
                    stack = [h for h in stack if h[0] < found[0]] + [found]
            return text, window_start, tuple(h[1] for h in stack)
        for line in previous.splitlines():  # headings of blocks entirely before the span
            found = heading_of(line)
            if found:
                headings = [h for h in headings if h[0] < found[0]] + [found]
        previous = doc.text
    raise EvidenceError(f"{path.name} is shorter than when it was indexed: index it again")


def passage(path: Path, source: Source, span: tuple[int, int] | None = None, *, max_bytes: int,
            stream_above: int = 4 << 20, context: int = CONTEXT_CHARS) -> Passage:
    """The text around ``span`` (document offsets; default the whole chunk), with its heading path.

    When the file no longer has the chunk's text at the recorded place (edited since indexing),
    the indexed chunk itself is shown, with a note.
    """
    start, end = span or (source.start, source.end)
    stat = path.stat()
    streamed = path.suffix.lower() in (".txt", ".md", ".markdown") and stat.st_size > stream_above
    if streamed:
        text, offset, outer = _streamed_window(path, source.start, source.end, stream_above)
    else:
        text, offset, outer = _document_text(str(path), stat.st_mtime_ns, stat.st_size, max_bytes), 0, ()
    if text[source.start - offset: source.end - offset] != source.text:
        a, b = max(0, start - source.start), max(0, end - source.start)
        return Passage("", source.text[a:b] or source.text, source.text[b:], heading_path(source.text[:a]),
                       False, False, note=f"{path.name} changed since it was indexed: this is the indexed "
                       "passage; index the file again to see it in place")
    a, b = start - offset, end - offset
    lo, hi = max(0, a - context), min(len(text), b + context)
    headings = outer if streamed else heading_path(text[:a] + _leading_headings(text[a:b]))
    return Passage(text[lo:a], text[a:b], text[b:hi], headings, lo > 0, hi < len(text))
