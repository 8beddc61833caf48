"""Knowledge-base lifecycle on real FAISS + SQLite: named kbs, manifest, moves, prune, remove, rebuild,
embedding cache, writer lock, streamed large files."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from kb_assistant.cli import main
from kb_assistant.embedders import HashEmbedder
from kb_assistant.errors import EmbedderMismatchError, KBError
from kb_assistant.kb import KBBusyError, KnowledgeBase, delete_kb, kb_summaries
from kb_assistant.kb.embed_cache import CACHE_FILE
from kb_assistant.kb.manifest import read_manifest
from kb_assistant.kb.payload import source_from_payload
from kb_assistant.kb.storage import writer_lock_for
from kb_assistant.settings import load_settings


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    (d / "sub").mkdir(parents=True)
    (d / "leave.txt").write_text("员工休假制度。正式员工每年享有十五天带薪年假。病假需提供医院证明。", encoding="utf-8")
    (d / "vpn.md").write_text("# IT\n\nThe VPN server uses port 1194. Backups rotate every 90 days.\n")
    (d / "sub" / "canteen.txt").write_bytes("食堂开放时间为每天上午七点到晚上八点。".encode("gbk"))
    return d


_MILVUS = pytest.param("milvus", marks=pytest.mark.skipif(
    __import__("importlib").util.find_spec("milvus_lite") is None, reason="pip install pymilvus milvus-lite"))


@pytest.fixture(params=["faiss", _MILVUS])
def kb(request: pytest.FixtureRequest):
    """The incremental-indexing behaviour is the same whichever store holds the vectors."""
    settings = load_settings(chunk_size=120, chunk_overlap=20, store=request.param)
    with KnowledgeBase.open(settings, "t", HashEmbedder(64)) as kb:
        yield kb


def _statuses(report) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {Path(o.path).name: o.status for o in report.outcomes}


def test_manifest_records_how_the_kb_was_built(kb: KnowledgeBase) -> None:
    m = read_manifest(kb.directory)
    assert m is not None and (m.embedder_id, m.embedder_dim, m.store_backend) == ("hash/64", 64, kb.settings.store)
    raw = json.loads((kb.directory / "manifest.json").read_text())
    assert raw["embedder"] == {"id": "hash/64", "dim": 64}
    assert raw["splitter"]["chunk_size"] == 120 and raw["schema_version"] == 3 and raw["created"]
    assert raw["store"] == {"backend": kb.settings.store} and raw["parser_version"] >= 1
    assert raw["heading_prefix"] is kb.settings.heading_prefix
    assert "embedder_id" not in kb.store.get_meta()  # the manifest is the one record
    with pytest.raises(EmbedderMismatchError, match="hash/64"):
        KnowledgeBase.open(kb.settings, "t", HashEmbedder(32))


def test_a_kb_without_manifest_is_guarded_by_its_store(kb: KnowledgeBase, docs: Path) -> None:
    kb.index_paths([docs])
    (kb.directory / "manifest.json").unlink()
    with pytest.raises(EmbedderMismatchError):  # the store's dimension still guards it
        KnowledgeBase.open(kb.settings, "t", HashEmbedder(32))


def test_rename_and_move_are_repointed_without_embedding(kb: KnowledgeBase, docs: Path) -> None:
    kb.index_paths([docs])
    ids_before = sorted(kb.store.ids())
    (docs / "leave.txt").rename(docs / "sub" / "holidays.txt")
    report = kb.index_paths([docs])
    assert _statuses(report)["holidays.txt"] == "moved"
    assert report.by_status("moved")[0].reason.endswith("leave.txt")
    assert report.embedded == 0 and report.cached == 0 and not report.by_status("missing")
    assert sorted(kb.store.ids()) == ids_before  # same vectors, re-pointed
    assert kb.search("带薪年假", 1)[0].source.endswith("holidays.txt")
    assert {Path(d.source).name for d in kb.documents()} == {"holidays.txt", "vpn.md", "canteen.txt"}


def test_moving_back_after_a_copy_does_not_collide(kb: KnowledgeBase, docs: Path) -> None:
    kb.index_paths([docs])
    (docs / "leave.txt").rename(docs / "b.txt")
    kb.index_paths([docs])  # b.txt holds the chunks first stored for leave.txt
    (docs / "leave.txt").write_bytes((docs / "b.txt").read_bytes())  # the same content back at the old path
    report = kb.index_paths([docs])
    assert _statuses(report)["leave.txt"] == "added" and report.embedded == 0  # from the cache
    assert {Path(d.source).name for d in kb.documents()} >= {"leave.txt", "b.txt"}


def test_gone_files_are_listed_then_pruned(kb: KnowledgeBase, docs: Path) -> None:
    kb.index_paths([docs])
    (docs / "vpn.md").unlink()
    report = kb.index_paths([docs])
    assert _statuses(report)["vpn.md"] == "missing"
    assert "1 missing" in report.summary()
    assert any(Path(d.source).name == "vpn.md" for d in kb.documents())  # kept without --prune
    report = kb.index_paths([docs], prune=True)
    assert _statuses(report)["vpn.md"] == "removed"
    assert all(Path(d.source).name != "vpn.md" for d in kb.documents())
    # Only folders that were indexed in this run are checked.
    (docs / "leave.txt").unlink()
    assert not kb.index_paths([docs / "sub"], prune=True).by_status("removed")


def test_remove_files_and_folders(kb: KnowledgeBase, docs: Path) -> None:
    kb.index_paths([docs])
    report = kb.remove([docs / "vpn.md", docs / "nope.txt"])
    assert _statuses(report) == {"vpn.md": "removed", "nope.txt": "failed"}
    assert report.by_status("removed")[0].chunks >= 1
    kb.remove([docs / "sub"])
    assert {Path(d.source).name for d in kb.documents()} == {"leave.txt"}
    assert not kb.search("VPN port", 5) or all(s.file_name == "leave.txt" for s in kb.search("VPN port", 5))


def test_rebuild_resplits_with_new_settings_and_reuses_the_cache(kb: KnowledgeBase, docs: Path) -> None:
    long = docs / "long.txt"
    long.write_text("。".join(f"第{i}条规定：员工应遵守公司制度" for i in range(40)) + "。", encoding="utf-8")
    kb.index_paths([docs])
    same = kb.rebuild()
    assert same.embedded == 0 and len(same.by_status("unchanged")) == 4  # nothing to re-split
    small = load_settings(chunk_size=60, chunk_overlap=10)
    with KnowledgeBase.open(small, "t", HashEmbedder(64)) as kb2:
        assert kb2.splitter_changed
        report = kb2.rebuild()
        assert not kb2.splitter_changed and not report.failed
        assert report.embedded > 0 and len(report.by_status("updated")) == 2  # the two long ones
        assert all(len(source_from_payload(i, 0, p).text) <= 60 for i, p in kb2.store.payloads())
        assert read_manifest(kb2.directory).splitter["chunk_size"] == 60  # type: ignore[union-attr]


def test_embedding_cache_holds_float32_vectors_and_skips_the_model(kb: KnowledgeBase, docs: Path) -> None:
    first = kb.index_paths([docs])
    assert first.embedded == kb.count() and first.cached == 0
    con = sqlite3.connect(kb.directory / CACHE_FILE)
    rows = con.execute("SELECT embedder, dim, vector FROM embeddings").fetchall()
    con.close()
    assert len(rows) == kb.count()
    assert all(e == "hash/64" and d == 64 and len(v) == 64 * 4 for e, d, v in rows)
    stored = kb.store.vectors(kb.store.ids()[:1])[0]
    assert any(np.allclose(np.frombuffer(v, "<f4"), stored) for _, _, v in rows)
    kb.remove([docs])
    again = kb.index_paths([docs])
    assert again.embedded == 0 and again.cached == kb.count()  # removed and re-added: no embedding


def test_a_corrupt_cache_is_set_aside(kb: KnowledgeBase, docs: Path) -> None:
    (kb.directory / CACHE_FILE).write_bytes(b"this is not sqlite" * 100)
    report = kb.index_paths([docs])
    assert not report.failed and report.embedded == kb.count()


def test_second_writer_waits_then_stops_with_a_clear_message(kb: KnowledgeBase, docs: Path) -> None:
    kb.index_paths([docs / "vpn.md"])
    other = writer_lock_for(kb.directory)  # a second holder of the same lock file: another process's view
    other.acquire()
    try:
        with pytest.raises(KBBusyError, match="is busy.*another process"):
            kb.index_paths([docs], wait=0.2)
        with pytest.raises(KBBusyError, match="is busy"):
            delete_kb(kb.settings, "t")
        assert kb.search("VPN port", 1)[0].file_name == "vpn.md"  # readers keep reading
    finally:
        other.release()
    assert not kb.index_paths([docs]).failed


def test_large_text_file_is_streamed_with_exact_offsets(kb: KnowledgeBase, tmp_path: Path) -> None:
    paragraphs = [f"第{i}段：正式员工每年享有十五天带薪年假。病假需提供医院证明。\r\n端口 {i}。" for i in range(3000)]
    text = "\r\n\r\n".join(paragraphs)
    big = tmp_path / "big.txt"
    big.write_bytes(text.encode("gbk"))
    kb.stream_block_bytes = 32 * 1024  # real files stream above 4 MB
    ticks: list[str] = []
    report = kb.index_paths([big], progress=lambda d, t, p: ticks.append(p))
    assert _statuses(report) == {"big.txt": "added"}
    assert any(p.endswith("chunks)") for p in ticks)  # chunk-level progress while streaming
    whole = text.replace("\r\n", "\n")
    payloads = sorted((p for _, p in kb.store.payloads()), key=lambda p: p["index"])
    assert [p["index"] for p in payloads] == list(range(len(payloads)))
    assert all(whole[p["start"] : p["end"]] == p["text"] for p in payloads)
    assert payloads[-1]["end"] == len(whole.rstrip())
    big.write_bytes(text.replace("端口", "port").encode("gbk"))  # edited: swapped whole
    assert _statuses(kb.index_paths([big])) == {"big.txt": "updated"}
    assert {p["doc_hash"] for _, p in kb.store.payloads()} == {kb.documents()[0].content_hash}


def test_cli_kb_create_list_delete(docs: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["kb", "create", "policies"]) == 0
    assert "created knowledge base 'policies'" in capsys.readouterr().out
    assert main(["kb", "create", "policies"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["index", str(docs), "--kb", "policies", "--quiet"]) == 0
    assert "3 added" in capsys.readouterr().out
    assert main(["kb", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["name", "documents", "chunks", "embedder", "store", "created", "synced"]
    assert out[1].split()[:6] == ["policies", "3", "3", "hash/256", "(256)", "faiss"]
    assert main(["list"]) == 0 and capsys.readouterr().out.split() == ["policies"]  # unchanged
    [row] = kb_summaries(load_settings())
    assert (row.documents, row.chunks, row.dim) == (3, 3, 256)

    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["kb", "delete", "policies"]) == 1
    assert "pass --yes" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    assert main(["kb", "delete", "policies"]) == 1
    assert main(["kb", "delete", "policies", "--yes"]) == 0
    capsys.readouterr()
    assert main(["kb", "list"]) == 0 and "no knowledge bases" in capsys.readouterr().out
    assert not any(load_settings().kb_root.iterdir())  # nothing left behind


def test_cli_index_summary_remove_rebuild(docs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", str(docs), "--kb", "c", "--quiet"]) == 0
    capsys.readouterr()
    (docs / "vpn.md").rename(docs / "network.md")
    (docs / "leave.txt").write_text("年假改为二十天。", encoding="utf-8")
    (docs / "sub" / "canteen.txt").unlink()
    assert main(["index", str(docs), "--kb", "c", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "0 added, 1 updated, 1 moved, 0 unchanged, 0 removed, 1 missing, 0 failed" in captured.out
    assert "moved:" in captured.err and "missing:" in captured.err
    assert main(["remove", str(docs / "sub" / "canteen.txt"), "--kb", "c", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["removed"] == 1
    assert main(["rebuild", "--kb", "c", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "2 unchanged" in out and "(0 embedded" in out  # same settings: nothing to redo
    with pytest.raises(KBError):
        KnowledgeBase.create(load_settings(), "c", HashEmbedder(256))


def test_manifest_records_when_documents_last_changed(kb: KnowledgeBase, docs: Path) -> None:
    assert kb.manifest.indexed is None
    kb.index_paths([docs])
    first = read_manifest(kb.directory)
    assert first is not None and first.indexed is not None
    (kb.directory / "manifest.json").write_text(first.to_json().replace(first.indexed, "2000-01-01T00:00:00+0000"))
    kb.manifest = read_manifest(kb.directory)  # type: ignore[assignment]
    kb.index_paths([docs])  # nothing changed: nothing recorded
    assert read_manifest(kb.directory).indexed == "2000-01-01T00:00:00+0000"  # type: ignore[union-attr]
    kb.remove([docs / "vpn.md"])
    assert read_manifest(kb.directory).indexed != "2000-01-01T00:00:00+0000"  # type: ignore[union-attr]
