"""A document's structure as it is read: heading paths over text, and tables kept as tables.

Parsers feed a :class:`TextBuilder` headings, paragraphs and tables in reading order; it lays them
out as one text (blank-line separated blocks, tables as Markdown) and records each stretch of text
with the heading path above it, so the splitter never lets a chunk cross a heading or cut a table
mid-row. Chinese headings are recognised by their numbering (第三章, 3.2, 一、, （一）), which is also
what corrects unstructured's English classifier: it calls "第三章 休假" narrative text when it is not
marked up as a heading, and calls Chinese sentences without a final 。 titles.
"""

from __future__ import annotations

import re

from ingest.types import Section

HEADING_SEPARATOR = " > "

_CN_NUM = r"[一二三四五六七八九十百千零〇两\d]+"
# numbering scheme -> rank (smaller = higher up); ranks only order schemes within one document
_RANKED = (
    (re.compile(rf"^第{_CN_NUM}[编篇部卷]"), 1),
    (re.compile(rf"^第{_CN_NUM}章"), 2),
    (re.compile(rf"^第{_CN_NUM}节"), 3),
    (re.compile(r"^[一二三四五六七八九十]+[、.．]"), 4),
    (re.compile(r"^[（(][一二三四五六七八九十]+[）)]"), 6),
    (re.compile(rf"^第{_CN_NUM}条"), 8),
)
_DOTTED = re.compile(r"^(\d{1,2}(?:\.\d{1,2}){0,4})(?:[、.．]\s*|\s+)(?=\S)")
_SENTENCE_END = re.compile(r"[。！？；，,;!?：:]$")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
MAX_HEADING_CHARS = 40
SHORT_TITLE_CHARS = 8  # an unnumbered Chinese title longer than this is taken for a sentence


def heading_rank(text: str) -> int | None:
    """The rank of a Chinese-style numbered heading (第三章 2, 3.2 → 5, 一、 4 ...), else None."""
    text = text.strip()
    for pattern, rank in _RANKED:
        if pattern.match(text):
            return rank
    m = _DOTTED.match(text)
    if m:
        return 4 + m.group(1).count(".")  # "3" ranks like 一、, "3.2" one below, "3.2.1" two below
    return None


def looks_like_heading(text: str) -> bool:
    """A short numbered line with no sentence punctuation: "第三章 休假", "3.2 年假", "（一）适用范围"."""
    text = text.strip()
    if not text or "\n" in text or len(text) > MAX_HEADING_CHARS or _SENTENCE_END.search(text):
        return False
    if "。" in text or text.count("，") > 1:
        return False
    return heading_rank(text) is not None


def is_chinese(text: str) -> bool:
    """Mostly Chinese: at least a third of the non-space characters are CJK ideographs."""
    chars = "".join(text.split())
    return bool(chars) and len(_CJK.findall(chars)) * 3 >= len(chars)


def chinese_title_verdict(text: str) -> bool | None:
    """Whether Chinese text can be a title: numbered headings and short unpunctuated labels ("附则")
    can, sentences cannot. None for text that is not mostly Chinese (no opinion: English is left to
    unstructured's classifier)."""
    text = text.strip()
    if not is_chinese(text):
        return None
    if looks_like_heading(text):
        return True
    return len(text) <= SHORT_TITLE_CHARS and not _SENTENCE_END.search(text) and not re.search(r"[。，、]", text)


def markdown_table(rows: list[list[str]]) -> str:
    """Rows as a Markdown table (first row the header); cells on one line, pipes escaped."""
    width = max(len(r) for r in rows)

    def cell(value: str) -> str:
        return " ".join(value.split()).replace("|", "\\|")

    lines = []
    for i, row in enumerate(rows):
        cells = [cell(v) for v in row] + [""] * (width - len(row))
        lines.append("| " + " | ".join(cells) + " |")
        if i == 0:
            lines.append("|" + " --- |" * width)
    return "\n".join(lines)


class _Heading:
    __slots__ = ("level", "rank", "text", "inferred")

    def __init__(self, level: int, rank: int | None, text: str, inferred: bool) -> None:
        self.level, self.rank, self.text, self.inferred = level, rank, text, inferred


class TextBuilder:
    """Lays out blocks as one text and records the sections the splitter keeps apart."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._pos = 0
        self._stack: list[_Heading] = []
        self._open: int | None = None  # where the current prose section starts
        self._open_path: tuple[str, ...] = ()
        self.sections: list[Section] = []

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(h.text for h in self._stack)

    def heading(self, text: str, level: int | None = None) -> None:
        """A heading: ``level`` from the document's markup (0 = title, 1 = chapter ...), or None to
        place it by its numbering among the headings above."""
        text = " ".join(text.split())
        if not text:
            return
        self._close()
        self._push(text, level)
        self.paragraph(text)

    def _push(self, text: str, level: int | None) -> None:
        rank = heading_rank(text)
        stack = self._stack
        if level is None:
            # a numbered heading closes the headings ranked at or below it; an unnumbered one
            # closes earlier guessed ones, so guessed titles are siblings, not an ever deeper chain
            while stack and (
                (rank is not None and stack[-1].rank is not None and stack[-1].rank >= rank)
                or (rank is None and stack[-1].inferred and stack[-1].rank is None)
            ):
                stack.pop()
            level = stack[-1].level + 1 if stack else 1
            inferred = True
        else:
            while stack and stack[-1].level >= level:
                stack.pop()
            inferred = False
        stack.append(_Heading(level, rank, text, inferred))

    def sections_of(self, text: str) -> tuple[Section, ...]:
        """Sections of a text kept exactly as it is (a PDF page's text layer): each numbered Chinese
        heading line ("第三章 休假", "3.2 年假") starts one; the headings carry over from earlier pages.
        Lines of other languages are left alone (an English "1. Connect the cable" is a list item)."""
        out: list[Section] = []
        open_at, path, pos, heading_line = 0, self.path, 0, ""
        for line in text.splitlines(keepends=True):
            if is_chinese(line) and looks_like_heading(line):
                body = text[open_at:pos].strip()
                if body and body != heading_line:
                    out.append(Section(open_at, pos, path))
                self._push(" ".join(line.split()), None)
                open_at, path, heading_line = pos, self.path, line.strip()
            pos += len(line)
        body = text[open_at:].strip()
        if body and body != heading_line:
            out.append(Section(open_at, len(text), path))
        return tuple(out)

    def reset(self, headings: tuple[str, ...] = ()) -> None:
        """Start over at a new top (a new slide, sheet or page): the path becomes ``headings``."""
        self._close()
        self._stack = [_Heading(i, None, h, False) for i, h in enumerate(headings)]

    def paragraph(self, text: str) -> None:
        text = text.strip()
        if not text:
            return
        if self._open is None:
            self._open, self._open_path = self._next_start(), self.path
        self._add(text)

    def table(self, rows: list[list[str]]) -> None:
        """A table with a header row, as Markdown; the splitter repeats its header in every chunk."""
        rows = [r for r in rows if any(c.strip() for c in r)]
        if not rows:
            return
        self._close()
        start = self._next_start()
        self._add(markdown_table(rows))
        self.sections.append(Section(start, self._pos, self.path, kind="table"))

    def rows(self, lines: list[str]) -> None:
        """Self-describing rows ("header: value; ..."), one per line; split between rows only."""
        lines = [line for line in lines if line.strip()]
        if not lines:
            return
        self._close()
        start = self._next_start()
        self._add("\n".join(lines))
        self.sections.append(Section(start, self._pos, self.path, kind="rows"))

    def text(self) -> str:
        self._close()
        return "".join(self._parts)

    def take(self) -> tuple[str, tuple[Section, ...]]:
        """The text and sections so far, then start a new text (the next page) under the same headings."""
        text, sections = self.text(), tuple(self.sections)
        self._parts, self._pos, self.sections = [], 0, []
        return text, sections

    def lines(self, text: str) -> None:
        """Plain lines (OCR output, a text layer): numbered Chinese headings among them become headings."""
        for line in text.splitlines():
            if looks_like_heading(line):
                self.heading(line)
            elif not self.title(line):
                self.paragraph(line)

    def title(self, text: str) -> bool:
        """Take ``text`` as the document's title if it opens the document and reads like one (short, no
        sentence punctuation), as the unstyled first line of an office document or a scan does."""
        text = text.strip()
        if self._parts or self._stack or not text or len(text) > MAX_HEADING_CHARS or _SENTENCE_END.search(text):
            return False
        if "。" in text or looks_like_heading(text):
            return False
        self.heading(text, 0)
        return True

    def _next_start(self) -> int:
        return self._pos + (2 if self._parts else 0)

    def _add(self, text: str) -> None:
        if self._parts:
            self._parts.append("\n\n")
            self._pos += 2
        self._parts.append(text)
        self._pos += len(text)

    def _close(self) -> None:
        # a heading with nothing under it before the next heading or table (a slide title over a
        # table, a chapter title over its first section) is left out: its words are in the path of
        # what follows, and alone it would be a chunk that matches a question but answers nothing
        if self._open is not None and self._pos > self._open and not self._bare_heading():
            self.sections.append(Section(self._open, self._pos, self._open_path))
        self._open = None

    def _bare_heading(self) -> bool:
        return bool(self._stack) and self._open_path == self.path and self._parts[-1] == self._stack[-1].text
