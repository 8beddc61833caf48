"""Heading paths reach the payload, the CLI's sources and the keyword index (when prefixed)."""

from __future__ import annotations

import json
import re
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


_MILVUS = pytest.param("milvus", marks=pytest.mark.skipif(
    __import__("importlib").util.find_spec("milvus_lite") is None, reason="pip install pymilvus milvus-lite"))


@pytest.fixture(params=["jieba", _MILVUS])
def keyword(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Our jieba BM25, or Milvus's own full-text field on a Milvus Lite store: both index the same text."""
    monkeypatch.setenv("KB_KEYWORD_INDEX", request.param)
    if request.param == "milvus":
        monkeypatch.setenv("KB_STORE", "milvus")
    return str(request.param)


def _index_for_keywords(folder: Path, monkeypatch: pytest.MonkeyPatch, *, prefix: bool = True) -> None:
    """Index ``folder`` into kb "t", searched by keywords alone with no relevance cut."""
    monkeypatch.setenv("KB_RETRIEVAL_MODE", "bm25")
    monkeypatch.setenv("KB_MIN_RELEVANCE", "0")
    monkeypatch.setenv("KB_HEADING_PREFIX", "true" if prefix else "false")
    assert main(["index", str(folder), "--kb", "t", "--quiet"]) == 0


def _search(query: str, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    assert main(["search", query, "--kb", "t", "--json", "--top-k", "3"]) == 0
    return json.loads(capsys.readouterr().out)


def test_heading_shown_and_prefixed(
    folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch, keyword: str,  # noqa: ANN001
) -> None:
    _index_for_keywords(folder, monkeypatch)
    capsys.readouterr()
    # "休假" is only in the chapter heading, "带薪" only in the body of 3.2: with the heading path in
    # front of each chunk's indexed text, the 3.2 chunk matches both and comes first
    hits = _search("休假 带薪", capsys)
    assert hits[0]["heading"] == "员工手册 > 第三章 休假 > 3.2 年假"
    assert "带薪年假" in hits[0]["text"]
    # a word found only in a heading finds the chunks under it, and only those
    hits = _search("休假", capsys)
    assert hits and all(h["heading"].startswith("员工手册 > 第三章 休假") for h in hits)
    assert main(["search", "休假 带薪", "--kb", "t", "--top-k", "1"]) == 0
    assert "handbook.docx · 员工手册 > 第三章 休假 > 3.2 年假" in capsys.readouterr().out


def test_without_prefix_heading_is_only_shown(
    folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch, keyword: str,  # noqa: ANN001
) -> None:
    _index_for_keywords(folder, monkeypatch, prefix=False)
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


def test_rebuild_applies_a_changed_prefix(
    folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch, keyword: str,  # noqa: ANN001
) -> None:
    _index_for_keywords(folder, monkeypatch, prefix=False)
    monkeypatch.setenv("KB_HEADING_PREFIX", "true")
    assert main(["index", str(folder), "--kb", "t", "--quiet"]) == 0  # unchanged file: not re-read
    capsys.readouterr()
    assert _search("手册 休假", capsys) == []
    assert main(["rebuild", "--kb", "t", "--quiet"]) == 0
    capsys.readouterr()
    assert _search("手册 休假", capsys)[0]["heading"].startswith("员工手册 > 第三章 休假")


def test_a_changed_prefix_is_recorded_and_asks_for_a_rebuild(folder: Path) -> None:
    from kb_assistant.embedders import HashEmbedder
    from kb_assistant.kb import KnowledgeBase, read_manifest
    from kb_assistant.settings import load_settings

    off, on = load_settings(heading_prefix=False), load_settings(heading_prefix=True)
    with KnowledgeBase.open(off, "t", HashEmbedder(64)) as kb:
        assert not kb.index_paths([folder]).notes
    assert read_manifest(kb.directory).heading_prefix is False  # type: ignore[union-attr]
    with KnowledgeBase.open(on, "t", HashEmbedder(64)) as kb:
        assert kb.splitter_changed
        (note,) = kb.index_paths([folder]).notes  # like a changed chunk size
        assert "(heading_prefix) differ" in note and "kb rebuild --kb t" in note
        kb.rebuild()
        assert not kb.splitter_changed and not kb.index_paths([folder]).notes
    assert read_manifest(kb.directory).heading_prefix is True  # type: ignore[union-attr]


@pytest.mark.parametrize(("parser_version", "prefixed"), [(0, False), (1, False), (2, True)])
def test_a_manifest_without_the_prefix_gets_what_it_was_built_with(
    tmp_path: Path, parser_version: int, prefixed: bool
) -> None:
    from kb_assistant.kb.manifest import MIGRATIONS, load_manifest

    body = {"name": "t", "embedder": {"id": "hash/64", "dim": 64}, "splitter": {"chunk_size": 500},
            "store": {"backend": "faiss"}, "parser_version": parser_version, "created": "x", "schema_version": 2}
    (tmp_path / "manifest.json").write_text(json.dumps(body))
    manifest, current = load_manifest(tmp_path)
    assert manifest is not None and manifest.heading_prefix is prefixed and not current
    assert json.loads(manifest.to_json())["schema_version"] == len(MIGRATIONS) == 3


def test_migrated_to_milvus_its_full_text_has_the_prefix(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch  # noqa: ANN001
) -> None:
    pytest.importorskip("milvus_lite", reason="pip install pymilvus milvus-lite")
    monkeypatch.setenv("KB_RETRIEVAL_MODE", "bm25")
    monkeypatch.setenv("KB_MIN_RELEVANCE", "0")
    assert main(["index", str(folder), "--kb", "t", "--quiet"]) == 0  # FAISS
    assert main(["migrate", "--kb", "t", "--to", str(tmp_path / "kb.db"), "--json"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("KB_KEYWORD_INDEX", "milvus")
    hits = _search("休假", capsys)  # only in the heading path: copied records get it in Milvus's BM25 field too
    assert hits and all(h["heading"].startswith("员工手册 > 第三章 休假") for h in hits)


def test_a_streamed_markdown_file_keeps_its_heading_paths(tmp_path: Path) -> None:
    from kb_assistant.embedders import HashEmbedder
    from kb_assistant.kb import KnowledgeBase
    from kb_assistant.settings import load_settings
    from tests.ingest.docgen import write_long_markdown

    path = write_long_markdown(tmp_path / "long.md")
    with KnowledgeBase.open(load_settings(chunk_size=120, chunk_overlap=0), "t", HashEmbedder(64)) as kb:
        kb.stream_block_bytes = 2048  # real files stream above 4 MB
        kb.index_paths([path])
        payloads = [p for _, p in kb.store.payloads()]
    assert len(payloads) > 100
    found = [(p, re.search(r"第(\d+)章第(\d+)节", p["text"])) for p in payloads]
    assert sum(m is not None for _, m in found) > 100
    for p, m in found:  # "第5章第3节第7段..." sits under "第5章 制度5 > 5.3 条款", in whichever block it was read
        if m:
            ch, sec = m.groups()
            assert p["heading"] == f"员工手册 > 第{ch}章 制度{ch} > {ch}.{sec} 条款" and p["prefixed"]
