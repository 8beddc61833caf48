"""The cited passage in its document: the checked path, the text around the span, the heading path."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb_assistant.types import Source
from kb_assistant.web.evidence import EvidenceError, document_path, heading_of, heading_path, passage

DOC = """# Operations handbook

Intro text.

## Backups

### Rotation

Backups are rotated weekly. Tapes go off site on Fridays.

## Network
The VPN uses port 1194.
"""


def source_for(path: Path, text: str, needle: str) -> Source:
    start = text.index(needle)
    return Source(1, needle, str(path), start, start + len(needle), 0.8)


def test_passage_shows_the_span_in_place_under_its_headings(tmp_path: Path) -> None:
    path = tmp_path / "ops.md"
    path.write_text(DOC, encoding="utf-8")
    src = source_for(path, DOC, "Backups are rotated weekly. Tapes go off site on Fridays.")
    start = src.start + len("Backups are rotated weekly. ")
    p = passage(path, src, (start, src.end), max_bytes=1 << 20)
    assert p.span == "Tapes go off site on Fridays."
    assert p.before.endswith("Backups are rotated weekly. ") and p.after.startswith("\n\n## Network")
    assert p.headings == ("Operations handbook", "Backups", "Rotation")
    assert not p.note
    vpn = source_for(path, DOC, "The VPN uses port 1194.")
    assert passage(path, vpn, None, max_bytes=1 << 20).headings == ("Operations handbook", "Network")


def test_a_large_file_is_read_in_blocks_with_the_headings_before_it(tmp_path: Path) -> None:
    filler = "Lorem ipsum dolor sit amet.\n" * 4000  # ~112 kB per section, past the 64 kB blocks below
    text = f"第一章 总则\n{filler}第二节 年假\n{filler}员工每年享有十五天带薪年假。\n{filler}"
    path = tmp_path / "big.txt"
    path.write_text(text, encoding="utf-8")
    src = source_for(path, text, "员工每年享有十五天带薪年假。")
    p = passage(path, src, None, max_bytes=1 << 30, stream_above=64 << 10)
    assert p.span == src.text and p.more_before and p.more_after
    assert p.headings == ("第一章 总则", "第二节 年假")


def test_an_edited_file_shows_the_indexed_passage_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "ops.md"
    path.write_text(DOC, encoding="utf-8")
    src = source_for(path, DOC, "The VPN uses port 1194.")
    path.write_text("Everything changed.\n" + DOC, encoding="utf-8")
    p = passage(path, src, None, max_bytes=1 << 20)
    assert p.span == "The VPN uses port 1194." and "changed since it was indexed" in p.note


@pytest.mark.parametrize(("line", "expected"), [
    ("## Backups ##", (2, "Backups")),
    ("第三章 考勤管理", (1, "第三章 考勤管理")),
    ("第二节 年假", (2, "第二节 年假")),
    ("一、适用范围", (2, "一、适用范围")),
    ("（二）病假", (3, "（二）病假")),
    ("2.3 Backup rotation", (2, "2.3 Backup rotation")),
    ("1. Buy milk.", None),  # a list item, not a heading
    ("Backups are rotated weekly.", None),
    ("", None),
])
def test_heading_lines(line: str, expected: tuple[int, str] | None) -> None:
    assert heading_of(line) == expected


def test_a_heading_closes_deeper_ones() -> None:
    assert heading_path("# A\n## B\n### C\n## D\ntext") == ("A", "D")


def test_only_recorded_files_that_still_exist_open(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("x", encoding="utf-8")
    assert document_path(str(path), {str(path)}, "kb") == path
    with pytest.raises(EvidenceError, match="a.txt was removed from knowledge base 'kb'"):
        document_path(str(path), set(), "kb")  # the kb no longer has it: never opened, even if on disk
    path.unlink()
    with pytest.raises(EvidenceError, match="a.txt is no longer at .*--prune"):
        document_path(str(path), {str(path)}, "kb")
