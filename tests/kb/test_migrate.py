"""``kb migrate``: a FAISS knowledge base copied to Milvus Lite searches the same, without re-embedding."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("pymilvus", reason="pip install pymilvus milvus-lite to test migration to Milvus")
pytest.importorskip("milvus_lite", reason="pip install pymilvus milvus-lite to test migration to Milvus")

from kb_assistant.app import open_kb  # noqa: E402
from kb_assistant.cli import main  # noqa: E402
from kb_assistant.kb import StoreRecord, read_manifest  # noqa: E402
from kb_assistant.kb.migrate import MigrationError, migrate_kb  # noqa: E402
from kb_assistant.settings import load_settings  # noqa: E402
from vectorstore.milvus_store import MANIFEST, MilvusStore  # noqa: E402


def ranked(hits: list) -> list[tuple[float, int]]:
    """(score, id) best first, equal scores by id: stores may return ties in any order."""
    return sorted((-round(h.score, 5), h.id) for h in hits)


@pytest.fixture
def faiss_kb(tmp_path: Path) -> str:
    docs = tmp_path / "docs"
    docs.mkdir()
    leave = "".join(f"第{i}条：正式员工工作满{i}年享有{i + 5}天带薪年假，病假{i}天需要医生证明。" for i in range(40))
    (docs / "leave.txt").write_text(leave, encoding="utf-8")
    vpn = "".join(f"VPN server {i} uses port {1194 + i}; token {i} resets.\n" for i in range(60))
    (docs / "vpn.md").write_text(vpn)
    claims = "".join(f"报销流程 {i}: claims of {i * 37} yuan within {i} days 🚀, 经理{i}审批。\n" for i in range(50))
    (docs / "mixed.md").write_text(claims, encoding="utf-8")
    assert main(["index", str(docs), "--kb", "m", "--quiet"]) == 0
    return "m"


def test_migrate_to_milvus_lite_searches_the_same(faiss_kb: str, tmp_path: Path) -> None:
    settings = load_settings()
    target = tmp_path / "target" / "kb.db"
    target.parent.mkdir()
    with open_kb(settings, faiss_kb, create=False) as kb:
        count = kb.count()
        meta = kb.store.get_meta()
        queries = ["年假有几天", "VPN port", "报销 expense"]
        before = {q: ranked(kb.search(q, 100)) for q in queries}
    assert count > 10

    report = migrate_kb(settings, faiss_kb, str(target), switch=False, sample=20)
    assert report.ok and report.source_count == report.target_count == count
    assert report.sampled == min(20, count) and report.matching == report.sampled
    assert not (settings.kb_root / faiss_kb / "store" / MANIFEST).exists()

    with MilvusStore.open(None, uri=str(target), collection=report.collection, create=False) as dst:
        assert dst.count() == count
        copied = dst.get_meta()
        assert {k: v for k, v in copied.items() if k not in ("dim", "generation")} == {
            k: v for k, v in meta.items() if k not in ("dim", "generation", "index_kind")}
        with open_kb(settings, faiss_kb, create=False) as kb:
            for q in queries:
                hits = dst.search(kb.embedder.embed_query(q), 100)  # all: no ties cut at k
                assert ranked(hits) == before[q]
            first = kb.store.ids()[0]
            assert dst.get([first])[0].payload == kb.store.get([first])[0].payload

    with pytest.raises(MigrationError, match="already holds"):  # never merges into a non-empty store
        migrate_kb(settings, faiss_kb, str(target), switch=False)


def test_cli_migrate_switches_the_kb(faiss_kb: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "kb.db"
    assert main(["migrate", "--kb", faiss_kb, "--to", str(target), "--json", "--sample", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["switched"] and out["matching"] == 5
    manifest = read_manifest(load_settings().kb_root / faiss_kb)
    assert manifest is not None
    assert manifest.store == StoreRecord("milvus", str(target.resolve()), f"kb_{faiss_kb}")  # the one record
    assert not (load_settings().kb_root / faiss_kb / "store" / MANIFEST).exists()
    with open_kb(load_settings(), faiss_kb, create=False) as kb:  # now opens from Milvus Lite
        assert type(kb.store).__name__ == "MilvusStore" and kb.store.uri == str(target.resolve())
        assert kb.search("VPN port", 3)[0].source.endswith("vpn.md")


def test_cli_migrate_reports_bad_uri(faiss_kb: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--kb", faiss_kb, "--to", "ftp://nowhere"]) == 1
    assert "neither http(s)" in capsys.readouterr().err


def test_migrate_to_a_milvus_server_and_use_it(
    faiss_kb: str, tmp_path: Path, milvus_server: str, server_collections: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`kb migrate --to http://...` against a real Milvus server; the knowledge base then lives there."""
    pytest.importorskip("milvus", reason="pip install milvus==2.3.5 to test against a Milvus server")
    collection = server_collections("migrated")
    with open_kb(load_settings(), faiss_kb, create=False) as kb:
        before = ranked(kb.search("年假有几天", 100))
        count = kb.count()
    assert main(["migrate", "--kb", faiss_kb, "--to", milvus_server, "--collection", collection, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["switched"] and out["target_count"] == count == out["source_count"]
    with open_kb(load_settings(), faiss_kb, create=False) as kb:
        assert type(kb.store).__name__ == "MilvusStore" and kb.store.uri == milvus_server
        assert kb.store.full_text is False  # Milvus 2.3: our BM25 serves the keyword leg
        assert ranked(kb.search("年假有几天", 100)) == before
        assert main(["search", "VPN port", "--kb", faiss_kb, "--json", "--top-k", "1"]) == 0
        assert json.loads(capsys.readouterr().out)[0]["file"].endswith("vpn.md")
    # Incremental indexing goes on, on the server: one edited file is replaced, the rest skipped.
    (tmp_path / "docs" / "vpn.md").write_text("The VPN moved to WireGuard on port 51820.\n")
    assert main(["index", str(tmp_path / "docs"), "--kb", faiss_kb, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"]["updated"] == 1 and report["counts"]["unchanged"] == 2, report["counts"]
    assert main(["search", "WireGuard 51820", "--kb", faiss_kb, "--json", "--top-k", "1"]) == 0
    assert "51820" in json.loads(capsys.readouterr().out)[0]["text"]
