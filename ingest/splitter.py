"""Split documents into overlapping chunks, preferring paragraph, sentence and clause ends (Chinese-aware)."""

from __future__ import annotations

import bisect
import dataclasses
import re
import unicodedata
from collections.abc import Callable, Iterable

from ingest.structure import HEADING_SEPARATOR
from ingest.types import Chunk, Document, Section

# Spans never cut: URLs, e-mail addresses and numbers (3.14, 1,000,000, 10:30, 2023年5月3日, 15%).
_URL = r"(?:https?|ftp)://[^\s<>\"'，。、；！？（）「」《》【】]+[^\s<>\"'，。、；！？（）「」《》【】.,;:!?)\]]|www\.[\w-]+(?:\.[\w-]+)+(?:/[^\s<>\"'，。、；！？]*[\w/#=&%-])?"
# the lookbehind makes matching start only at the head of a run: linear, not quadratic, on long runs
_EMAIL = r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
_NUM = r"\d+(?:[.,:/\-]\d+)*"
_NUMBER = rf"{_NUM}(?:[年月日号时点分秒]{_NUM})*[年月日号时点分秒%％]?"
PROTECTED = re.compile(rf"{_URL}|{_EMAIL}|{_NUMBER}")

# Cut points by preference: the position right after the match is where the next piece starts.
_CLOSERS = "」』”’\"')）\\]】"
_LEVEL_PATTERNS = (
    re.compile(r"\n[ \t\u3000]*\n\s*"),  # 0: blank line (paragraph)
    re.compile(r"\n\s*"),  # 1: line break
    re.compile(rf"(?:[。！？!?；;]|…+|\.(?=\s))[{_CLOSERS}]*\s*"),  # 2: sentence end
    re.compile(r"[，、：,:]\s*"),  # 3: clause break
    re.compile(r"[ \t\u3000]+"),  # 4: space
)
_WORD_LEVEL = 5  # any boundary except inside an ASCII word
_CHAR_LEVEL = 6  # any boundary outside a protected span
_OVERLAP_MAX_LEVEL = _WORD_LEVEL


class Splitter:
    """Seam for splitters: implement ``split_document``; ``split`` numbers chunks per source."""

    def split_document(self, doc: Document) -> list[Chunk]:
        """Split one document (or page) into chunks whose offsets index ``doc.text``."""
        raise NotImplementedError

    def split(self, docs: Iterable[Document]) -> list[Chunk]:
        """Split many documents; ``index`` runs on across the pages of the same source."""
        counters: dict[str, int] = {}
        out: list[Chunk] = []
        for doc in docs:
            for chunk in self.split_document(doc):
                n = counters.get(doc.source, 0)
                counters[doc.source] = n + 1
                out.append(dataclasses.replace(chunk, index=n))
        return out

    def settings(self) -> dict[str, object]:
        """How this splitter is configured, for an index to record."""
        return {"name": type(self).__name__}


class ChineseTextSplitter(Splitter):
    """Recursive splitter: blank lines, line breaks, sentence ends (。！？；!?; . ), clauses (，、：,:),
    spaces, then any character; greedy merge up to ``chunk_size`` with ``chunk_overlap`` carried over.

    Sizes are measured with ``length_function`` (characters by default; pass a tokenizer's counter
    to measure tokens). Numbers, URLs and e-mail addresses are never cut, so a single one longer than
    ``chunk_size`` becomes an oversized chunk of its own.

    A document's sections are split apart: no chunk crosses a heading, and tables are cut between
    rows only, each chunk repeating the header row (a single row over ``chunk_size`` stays whole).
    """

    def __init__(
        self, *, chunk_size: int = 400, chunk_overlap: int = 60, length_function: Callable[[str], int] = len
    ) -> None:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        if not 0 <= chunk_overlap < chunk_size:
            raise ValueError("chunk_overlap must be at least 0 and smaller than chunk_size")
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.length_function = length_function

    def settings(self) -> dict[str, object]:
        unit = (
            "characters"
            if self.length_function is len
            else getattr(self.length_function, "__name__", type(self.length_function).__name__)
        )
        return {
            "name": type(self).__name__,
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
            "length_unit": unit,
        }

    def split_document(self, doc: Document) -> list[Chunk]:
        plan = _Plan(doc.text, self.length_function)
        chunks: list[Chunk] = []
        for section in doc.sections or (Section(0, len(doc.text)),):
            heading = HEADING_SEPARATOR.join(section.headings)
            if section.kind == "text":
                pieces = [
                    (s, e, "") for s, e in self._merge(plan, plan.split(section.start, section.end, 0, self.chunk_size))
                ]
            else:
                pieces = self._rows(plan, section)
            for start, end, head in pieces:
                start, end = plan.strip(start, end)
                if start < end:
                    text = head + doc.text[start:end]
                    chunks.append(
                        Chunk(text, doc.source, start, end, page=doc.page, index=len(chunks), heading=heading)
                    )
        return chunks

    def _rows(self, plan: _Plan, section: Section) -> list[tuple[int, int, str]]:
        """A table or row list packed row by row; later chunks of a table carry its header lines."""
        text = plan.text
        lines, pos = [], section.start
        for line in text[section.start : section.end].split("\n"):
            lines.append((pos, pos + len(line)))
            pos += len(line) + 1
        header = ""
        if section.kind == "table" and len(lines) > 2:
            header = text[lines[0][0] : lines[1][1]] + "\n"
            first, body = lines[0][0], lines[2:]
        else:
            first, body = lines[0][0], lines
        out: list[tuple[int, int, str]] = []
        start: int | None = None
        end = first
        for a, b in body:
            if start is None:
                start = first
            elif self.length_function((header if out else "") + text[start:b]) > self.chunk_size:
                out.append((start, end, header if out else ""))
                start = a
            end = b
        if start is not None:
            out.append((start, end, header if out else ""))
        return out

    def _merge(self, plan: _Plan, pieces: list[tuple[int, int]]) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        cur: tuple[int, int] | None = None
        for start, end in pieces:
            if cur is None:
                cur = (start, end)
            elif plan.length(cur[0], end) <= self.chunk_size:
                cur = (cur[0], end)
            else:
                out.append(cur)
                overlap = self._overlap_start(plan, cur, end)
                cur = (overlap if overlap is not None else start, end)
        if cur is not None:
            out.append(cur)
        return out

    def _overlap_start(self, plan: _Plan, prev: tuple[int, int], new_end: int) -> int | None:
        """Where the next chunk starts inside ``prev``: the longest tail within ``chunk_overlap``,
        starting at the best-ranked boundary (sentence, then clause, then space or CJK character)."""
        if self.chunk_overlap == 0:
            return None
        for level in range(_OVERLAP_MAX_LEVEL + 1):
            found = None
            # walk back from the end: tails grow, so stop at the first one longer than the overlap
            for pos in reversed(plan.breaks(prev[0], prev[1], level)):
                tail = plan.length(pos, prev[1])
                if tail > self.chunk_overlap:
                    break
                if unicodedata.category(plan.text[pos])[0] == "P":
                    continue  # a chunk opening on "。" or "." reads badly
                if tail > 0 and plan.length(pos, new_end) <= self.chunk_size:
                    found = pos
            if found is not None:
                return found
        return None


class _Plan:
    """Cut points of one text, by level, with protected spans removed."""

    def __init__(self, text: str, length_function: Callable[[str], int]) -> None:
        self.text = text
        self._len = length_function
        self.blocked = bytearray(len(text) + 1)  # 1 where a cut would land inside a protected span
        for m in PROTECTED.finditer(text):
            self.blocked[m.start() + 1 : m.end()] = b"\x01" * (m.end() - m.start() - 1)
        level_of: dict[int, int] = {}
        for level, pattern in enumerate(_LEVEL_PATTERNS):
            for m in pattern.finditer(text):
                pos = m.end()
                if 0 < pos < len(text) and not self.blocked[pos] and pos not in level_of:
                    level_of[pos] = level
        self.by_level: list[list[int]] = [[] for _ in _LEVEL_PATTERNS]
        for pos in sorted(level_of):
            self.by_level[level_of[pos]].append(pos)

    def strip(self, start: int, end: int) -> tuple[int, int]:
        while start < end and self.text[start].isspace():
            start += 1
        while end > start and self.text[end - 1].isspace():
            end -= 1
        return start, end

    def length(self, start: int, end: int) -> int:
        start, end = self.strip(start, end)
        return self._len(self.text[start:end]) if start < end else 0

    def breaks(self, start: int, end: int, level: int) -> list[int]:
        """Cut points strictly inside ``(start, end)`` at exactly ``level``, ascending."""
        if level < len(self.by_level):
            positions = self.by_level[level]
            return positions[bisect.bisect_right(positions, start) : bisect.bisect_left(positions, end)]
        text, blocked = self.text, self.blocked
        out = []
        for pos in range(start + 1, end):
            if blocked[pos]:
                continue
            if level == _WORD_LEVEL and _is_word(text[pos - 1]) and _is_word(text[pos]):
                continue
            out.append(pos)
        return out

    def split(self, start: int, end: int, level: int, size: int) -> list[tuple[int, int]]:
        """Contiguous pieces covering ``[start, end)``, each within ``size`` unless unbreakable."""
        if self.length(start, end) <= size or level > _CHAR_LEVEL:
            return [(start, end)]
        cuts = self.breaks(start, end, level)
        if not cuts:
            return self.split(start, end, level + 1, size)
        pieces: list[tuple[int, int]] = []
        bounds = [start, *cuts, end]
        for a, b in zip(bounds, bounds[1:], strict=False):
            pieces.extend(self.split(a, b, level + 1, size))
        return pieces


def _is_word(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "_")
