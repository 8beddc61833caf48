"""Every limit holds on every path into a file: size before reading (streamed text too), chunks and pages
per file; each refusal names the file, the limit and the setting that raises it."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb_assistant.embedders import HashEmbedder
from kb_assistant.kb import KnowledgeBase
from kb_assistant.settings import load_settings
from tests.ingest.pdfgen import write_pdf


def _open(**settings: object) -> KnowledgeBase:
    return KnowledgeBase.open(load_settings(chunk_size=120, chunk_overlap=20, **settings), "t", HashEmbedder(64))


def _text(mb: float) -> str:
    line = "正式员工每年享有十五天带薪年假，病假需提供医院证明。The VPN uses port 1194.\n"
    return line * int(mb * 1024 * 1024 / len(line.encode()))


@pytest.mark.parametrize("stream_block_bytes", [64 * 1024, 4 * 1024 * 1024], ids=["streamed", "whole"])
def test_size_limit_holds_for_streamed_and_whole_text(tmp_path: Path, stream_block_bytes: int) -> None:
    big = tmp_path / "big.txt"
    big.write_text(_text(2), encoding="utf-8")
    with _open(max_file_mb=1) as kb:
        kb.stream_block_bytes = stream_block_bytes  # real files stream above 4 MB
        report = kb.index_paths([big])
        assert [o.status for o in report.outcomes] == ["failed"]
        reason = report.outcomes[0].reason
        assert "big.txt" in reason and "1.0 MB limit" in reason and "KB_MAX_FILE_MB" in reason
        assert kb.count() == 0 and report.embedded == 0


@pytest.mark.parametrize("stream_block_bytes", [16 * 1024, 4 * 1024 * 1024], ids=["streamed", "whole"])
def test_chunk_limit_refuses_before_embedding(tmp_path: Path, stream_block_bytes: int) -> None:
    big = tmp_path / "many.txt"
    big.write_text(_text(0.1), encoding="utf-8")  # ~1,000 chunks of 120 characters
    small = tmp_path / "small.txt"
    small.write_text("食堂开放时间为每天上午七点到晚上八点。", encoding="utf-8")
    with _open(max_chunks_per_file=50) as kb:
        kb.stream_block_bytes = stream_block_bytes
        report = kb.index_paths([big, small])
        outcome = {Path(o.path).name: o for o in report.outcomes}
        assert outcome["small.txt"].status == "added"
        assert outcome["many.txt"].status == "failed"
        assert "many.txt" in outcome["many.txt"].reason and "50 chunk limit" in outcome["many.txt"].reason
        assert "KB_MAX_CHUNKS_PER_FILE" in outcome["many.txt"].reason
        assert report.embedded == 1 and {d.source for d in kb.documents()} == {str(small)}


def test_page_limit(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "long.pdf", [f"Page {i} of the handbook." for i in range(1, 5)])
    with _open(max_pages_per_file=3) as kb:
        (outcome,) = kb.index_paths([pdf]).outcomes
        assert outcome.status == "failed"
        assert "long.pdf" in outcome.reason and "4 pages" in outcome.reason and "3 page limit" in outcome.reason
        assert "KB_MAX_PAGES_PER_FILE" in outcome.reason
    with _open(max_pages_per_file=4) as kb:
        assert kb.index_paths([pdf]).outcomes[0].status == "added"
