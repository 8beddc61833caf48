"""``kb gc`` and the automatic prune after large removals: the embedding cache keeps only texts some
document holds, the FAISS change log is folded into its snapshot, and the knowledge base still answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb_assistant.cli import main
from kb_assistant.embedders import HashEmbedder
from kb_assistant.kb import KnowledgeBase
from kb_assistant.kb.embed_cache import CACHE_FILE, EmbedCache, text_key
from kb_assistant.settings import load_settings
from vectorstore.faiss_log import HEADER_LEN


def _paragraphs(topic: str, n: int) -> str:
    return "\n\n".join(f"{topic}第{i}条：" + "正式员工每年享有带薪年假，须提前申请。" * 12 for i in range(n))


def _cache_keys(kb: KnowledgeBase) -> set[bytes]:
    cache = EmbedCache.open(kb.directory / CACHE_FILE)
    try:
        return {bytes(k) for (k,) in cache.conn.execute("SELECT text_sha256 FROM embeddings")}
    finally:
        cache.close()


def _store_keys(kb: KnowledgeBase) -> set[bytes]:
    return {text_key(p["text"]) for _, p in kb.store.payloads()}


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    d.mkdir()
    for name in ("leave", "expenses", "vpn"):
        (d / f"{name}.txt").write_text(_paragraphs(name, 6), encoding="utf-8")
    return d


def test_gc_prunes_texts_no_document_holds_and_compacts(docs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(chunk_size=200, chunk_overlap=0)
    with KnowledgeBase.open(settings, "gc", HashEmbedder(256)) as kb:
        kb.index_paths([docs])
        (docs / "leave.txt").write_text(_paragraphs("新版年假", 6), encoding="utf-8")  # old texts now unused
        kb.index_paths([docs])
        (docs / "vpn.txt").unlink()
        kb.remove([docs / "vpn.txt"])
        unused = _cache_keys(kb) - _store_keys(kb)
        assert unused  # the cache still holds the old version's and the removed file's texts
        assert (kb.directory / "store" / "index.log").stat().st_size > HEADER_LEN
    assert main(["gc", "--kb", "gc"]) == 0
    assert f"{len(unused):,} unused removed" in capsys.readouterr().out
    with KnowledgeBase.open(settings, "gc", HashEmbedder(256), create=False) as kb:
        assert _cache_keys(kb) == _store_keys(kb)
        assert (kb.directory / "store" / "index.log").stat().st_size == HEADER_LEN  # folded into the snapshot
        assert kb.search("新版年假第3条", 1)[0].source.endswith("leave.txt")
        report = kb.index_paths([docs])  # nothing a document holds was lost: nothing to embed
        assert report.embedded == 0 and len(report.by_status("unchanged")) == 2


def test_a_large_removal_prunes_by_itself(docs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("kb_assistant.kb.housekeeping.AUTO_GC_MIN_CHUNKS", 5)
    settings = load_settings(chunk_size=200, chunk_overlap=0)
    with KnowledgeBase.open(settings, "auto", HashEmbedder(256)) as kb:
        kb.index_paths([docs])
        small = kb.remove([docs / "vpn.txt"])  # a third of the chunks: a large share
        assert any("unused removed" in note for note in small.notes)
        assert _cache_keys(kb) == _store_keys(kb)
        (docs / "extra.txt").write_text(_paragraphs("extra", 1), encoding="utf-8")
        kb.index_paths([docs])
        routine = kb.remove([docs / "extra.txt"])  # a few chunks out of many: left for `kb gc`
        assert not routine.notes
        assert _cache_keys(kb) > _store_keys(kb)
