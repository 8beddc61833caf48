"""A document whose file became unreadable or empty keeps answering from its indexed version, marked stale
everywhere it shows (kb list, its sources, the summary), until the file is fixed or --prune removes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb_assistant.cli import main
from kb_assistant.embedders import HashEmbedder
from kb_assistant.kb import KnowledgeBase
from kb_assistant.settings import load_settings
from kb_assistant.web.kbinfo import document_rows

LEAVE = "员工休假制度。正式员工每年享有十五天带薪年假。病假需提供医院证明。"
VPN = "The VPN server uses port 1194. Backups rotate every 90 days."
_MILVUS = pytest.param("milvus", marks=pytest.mark.skipif(
    __import__("importlib").util.find_spec("milvus_lite") is None, reason="pip install pymilvus milvus-lite"))


@pytest.fixture(params=["faiss", _MILVUS])
def kb(request: pytest.FixtureRequest):
    with KnowledgeBase.open(load_settings(store=request.param), "t", HashEmbedder(256)) as kb:
        yield kb


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    d.mkdir()
    (d / "leave.txt").write_text(LEAVE, encoding="utf-8")
    (d / "vpn.txt").write_text(VPN, encoding="utf-8")
    return d


def _outcomes(report) -> dict[str, tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {Path(o.path).name: (o.status, o.reason) for o in report.outcomes if o.status != "removed"}


def test_an_emptied_file_is_marked_stale_then_fixed(kb: KnowledgeBase, docs: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert not kb.index_paths([docs]).failed
    (docs / "leave.txt").write_text("", encoding="utf-8")
    report = kb.index_paths([docs])
    status, reason = _outcomes(report)["leave.txt"]
    assert status == "failed" and "empty" in reason and "marked stale" in reason
    assert report.stale == 1 and "1 stale document" in report.summary()
    stale = {Path(d.source).name: d.stale for d in kb.documents()}
    assert "empty" in stale["leave.txt"] and stale["vpn.txt"] == ""
    rows = {r["document"]: r["stale"] for r in document_rows(kb.documents())}  # the web app's table
    assert "empty" in rows["leave.txt"] and rows["vpn.txt"] is None
    hits = {Path(s.source).name: s for s in kb.search(LEAVE, 2)}
    assert hits["leave.txt"].label == "leave.txt (stale)" and hits["leave.txt"].to_dict()["stale"]
    assert hits["vpn.txt"].label == "vpn.txt" and "stale" not in hits["vpn.txt"].to_dict()
    assert kb.index_paths([docs]).stale == 1  # still stale on the next run, still said
    assert main(["list", "--kb", "t"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln for ln in lines if "STALE" in ln] == [ln for ln in lines if "leave.txt" in ln]

    (docs / "leave.txt").write_text(LEAVE, encoding="utf-8")  # the same text again: current, not stale
    report = kb.index_paths([docs])
    assert _outcomes(report)["leave.txt"][0] == "unchanged" and report.stale == 0
    assert all(d.stale == "" for d in kb.documents()) and "stale" not in report.summary()

    (docs / "leave.txt").write_text("", encoding="utf-8")
    assert kb.index_paths([docs]).stale == 1
    (docs / "leave.txt").write_text(LEAVE + "病假每年十天。", encoding="utf-8")  # edited: indexed afresh
    report = kb.index_paths([docs])
    assert _outcomes(report)["leave.txt"][0] == "updated" and report.stale == 0
    assert all(d.stale == "" for d in kb.documents())
    (docs / "leave.txt").write_text("", encoding="utf-8")
    assert kb.index_paths([docs]).stale == 1
    (docs / "leave.txt").rename(docs / "old.txt")  # a stale file renamed away and its text back elsewhere
    (docs / "again.txt").write_text(LEAVE + "病假每年十天。", encoding="utf-8")
    report = kb.index_paths([docs])
    assert _outcomes(report)["again.txt"][0] == "moved" and report.stale == 0
    assert all(d.stale == "" for d in kb.documents())


def test_prune_removes_stale_documents(kb: KnowledgeBase, docs: Path) -> None:
    kb.index_paths([docs])
    (docs / "leave.txt").write_bytes(b"\x00\x01\x02\x03" * 64)  # now binary junk
    assert kb.index_paths([docs]).stale == 1
    report = kb.index_paths([docs], prune=True)
    assert _outcomes(report)["leave.txt"][0] == "failed" and "removed" in _outcomes(report)["leave.txt"][1]
    assert report.stale == 0 and [Path(d.source).name for d in kb.documents()] == ["vpn.txt"]


def test_rebuild_marks_and_prunes_stale_documents(kb: KnowledgeBase, docs: Path) -> None:
    kb.index_paths([docs])
    (docs / "vpn.txt").write_text("   \n", encoding="utf-8")
    report = kb.rebuild()
    assert _outcomes(report)["vpn.txt"][0] == "failed" and report.stale == 1
    assert {Path(d.source).name: bool(d.stale) for d in kb.documents()} == {"leave.txt": False, "vpn.txt": True}
    report = kb.rebuild(prune=True)
    assert report.stale == 0 and [Path(d.source).name for d in kb.documents()] == ["leave.txt"]
