"""A zip bomb dressed as a .docx is refused from the zip's directory, before anything is unpacked."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb_assistant.embedders import HashEmbedder
from kb_assistant.kb import KnowledgeBase
from kb_assistant.settings import load_settings
from tests.hostile.files import docx_bomb
from tests.hostile.run import run_kb

pytest.importorskip("docx")

MEMORY_CEILING = 600 * 1024 * 1024  # the indexer alone takes ~150 MB; unpacking the bomb would take > 1 GiB


def test_a_1mb_docx_holding_1gib_of_xml_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    bomb = docx_bomb(tmp_path / "bomb.docx")
    assert bomb.stat().st_size < 2 * 1024 * 1024
    good = tmp_path / "good.txt"
    good.write_text("食堂开放时间为每天上午七点到晚上八点。", encoding="utf-8")
    run = run_kb(["index", str(bomb), str(good), "--kb", "bombed", "--quiet"], tmp_path)
    print(f"peak RSS {run.peak_rss >> 20} MB")
    assert run.peak_rss < MEMORY_CEILING, f"peak RSS {run.peak_rss >> 20} MB"
    assert run.code == 1, run.err
    (line,) = [ln for ln in run.err.splitlines() if "bomb.docx" in ln]
    assert line.startswith("failed: ") and "unpacks to 10" in line and "256 MB limit" in line
    assert "KB_MAX_UNPACKED_MB" in line
    assert "Traceback" not in run.err and "1 added" in run.out


def test_archive_entry_limit(tmp_path: Path) -> None:
    import docx

    path = tmp_path / "normal.docx"
    document = docx.Document()
    document.add_paragraph("正式员工每年享有十五天带薪年假。")
    document.save(path)
    settings = load_settings(max_archive_entries=5)
    with KnowledgeBase.open(settings, "t", HashEmbedder(64)) as kb:
        (outcome,) = kb.index_paths([path]).outcomes
        assert outcome.status == "failed"
        assert "normal.docx" in outcome.reason and "above the 5 limit" in outcome.reason
        assert "KB_MAX_ARCHIVE_ENTRIES" in outcome.reason
    with KnowledgeBase.open(load_settings(), "t2", HashEmbedder(64)) as kb:
        assert kb.index_paths([path]).outcomes[0].status == "added"
