"""Careless input on the command line: a mistyped path, odd file names, symlink loops, damaged PDFs."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from ingest import load_file
from kb_assistant.cli import main
from kb_assistant.kb import kb_names
from kb_assistant.settings import load_settings
from tests.ingest.pdfgen import pdf_bytes


def test_a_mistyped_path_creates_no_knowledge_base(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", str(tmp_path / "dcos"), "--kb", "typo", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dcos: no such file or folder" in err
    assert "typo" not in kb_names(load_settings())


def test_a_newline_in_a_file_name_keeps_list_lines_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "two\nlines.txt").write_text("正式员工每年享有十五天带薪年假。", encoding="utf-8")
    (docs / "plain.txt").write_text("The VPN server uses port 1194.", encoding="utf-8")
    assert main(["index", str(docs), "--kb", "odd", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["list", "--kb", "odd"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(line.startswith("  ") for line in lines[1:])
    assert any("two\\nlines.txt" in line for line in lines)


def test_skipped_files_and_symlink_loops_are_counted_and_named(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.txt").write_text("食堂开放时间为每天上午七点到晚上八点。", encoding="utf-8")
    (docs / "photo.xyz").write_bytes(b"\x89PNG")
    (docs / "a.txt").symlink_to(docs / "b.txt")
    (docs / "b.txt").symlink_to(docs / "a.txt")
    assert main(["index", str(docs), "--kb", "links", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "3 skipped" in out
    assert "skipped: " + str(docs / "a.txt") + ": a symbolic link that loops back on itself" in err
    assert "photo.xyz: unsupported type .xyz" in err
    assert main(["index", str(docs / "a.txt"), "--kb", "links", "--quiet"]) == 1  # named directly: a failure
    out, err = capsys.readouterr()
    assert "1 failed" in out and "a.txt: a symbolic link that loops back on itself" in err and "Traceback" not in err


def test_pypdf_warnings_name_the_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = pdf_bytes(["Hello world, page one."])
    broken = re.sub(rb"startxref\s+(\d+)", lambda m: b"startxref\n" + str(int(m.group(1)) + 7).encode(), data)
    path = tmp_path / "damaged.pdf"
    path.write_bytes(broken)
    with caplog.at_level(logging.WARNING):
        assert load_file(path)[0].text == "Hello world, page one."
    # pytest also hooks pypdf's own (no longer propagating) logger; what reaches the user is ingest.pdf's
    named = [r.getMessage() for r in caplog.records if r.name == "ingest.pdf"]
    assert named and all(m.startswith("damaged.pdf: ") for m in named)
