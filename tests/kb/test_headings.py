"""Heading paths reach the payload, the CLI's sources and the keyword index (when prefixed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kb_assistant.cli import main
from tests.ingest.docgen import HANDBOOK, write_docx


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    d.mkdir()
    write_docx(d / "handbook.docx", HANDBOOK)
    return d


def _search(query: str, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    assert main(["search", query, "--kb", "t", "--json", "--top-k", "3"]) == 0
    return json.loads(capsys.readouterr().out)


def test_heading_shown_and_prefixed(folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("KB_RETRIEVAL_MODE", "bm25")
    monkeypatch.setenv("KB_MIN_RELEVANCE", "0")
    assert main(["index", str(folder), "--kb", "t", "--quiet"]) == 0
    capsys.readouterr()
    # "休假" is only in the chapter heading, "带薪" only in the body of 3.2: with the heading path in
    # front of each chunk's indexed text, the 3.2 chunk matches both and comes first
    hits = _search("休假 带薪", capsys)
    assert hits[0]["heading"] == "员工手册 > 第三章 休假 > 3.2 年假"
    assert "带薪年假" in hits[0]["text"]
    assert main(["search", "休假 带薪", "--kb", "t", "--top-k", "1"]) == 0
    assert "handbook.docx · 员工手册 > 第三章 休假 > 3.2 年假" in capsys.readouterr().out


def test_without_prefix_heading_is_only_shown(folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("KB_RETRIEVAL_MODE", "bm25")
    monkeypatch.setenv("KB_MIN_RELEVANCE", "0")
    monkeypatch.setenv("KB_HEADING_PREFIX", "false")
    assert main(["index", str(folder), "--kb", "t", "--quiet"]) == 0
    capsys.readouterr()
    assert _search("手册 休假", capsys) == []  # words found only in headings are not indexed
    hits = _search("带薪", capsys)
    assert hits[0]["heading"] == "员工手册 > 第三章 休假 > 3.2 年假"  # but the path is still shown


def test_prompt_names_the_heading_path() -> None:
    from kb_assistant.prompt import format_source
    from kb_assistant.types import Source

    table = "| 型号 | 功率 |\n| --- | --- |\n| B 型 | 200W |"
    source = Source(1, table, "/d/spec.docx", 0, 9, 0.9, heading="产品手册 > 参数")
    assert format_source(2, source) == f"[2] spec.docx · 产品手册 > 参数\n{table}"


def test_rebuild_applies_a_changed_prefix(folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("KB_RETRIEVAL_MODE", "bm25")
    monkeypatch.setenv("KB_MIN_RELEVANCE", "0")
    monkeypatch.setenv("KB_HEADING_PREFIX", "false")
    assert main(["index", str(folder), "--kb", "t", "--quiet"]) == 0
    monkeypatch.setenv("KB_HEADING_PREFIX", "true")
    assert main(["index", str(folder), "--kb", "t", "--quiet"]) == 0  # unchanged file: not re-read
    capsys.readouterr()
    assert _search("手册 休假", capsys) == []
    assert main(["rebuild", "--kb", "t", "--quiet"]) == 0
    capsys.readouterr()
    assert _search("手册 休假", capsys)[0]["heading"].startswith("员工手册 > 第三章 休假")
