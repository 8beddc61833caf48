"""The knowledge base over the real leaves (loaders, splitter, FAISS + SQLite), with the hash embedder."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb_assistant.embedders import HashEmbedder
from kb_assistant.errors import EmbedderMismatchError, EmptyKnowledgeBaseError, KBError
from kb_assistant.kb import KnowledgeBase, delete_kb, kb_names
from kb_assistant.settings import load_settings


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    d.mkdir()
    (d / "leave.txt").write_text("员工休假制度。正式员工每年享有十五天带薪年假。病假需提供医院证明。", encoding="utf-8")
    (d / "canteen.txt").write_bytes("食堂开放时间为每天上午七点到晚上八点。".encode("gbk"))
    (d / "guide.md").write_text("# IT\n\nThe VPN server uses port 1194. Backups rotate every 90 days.\n")
    (d / "sub").mkdir()
    (d / "sub" / "notes.txt").write_text("Quarterly review meetings happen in March.\n")
    (d / ".hidden.txt").write_text("should not be indexed")
    (d / "drawing.dwg").write_bytes(b"AC1032")
    return d


@pytest.fixture
def kb():
    settings = load_settings(chunk_size=120, chunk_overlap=20)
    with KnowledgeBase.open(settings, "test", HashEmbedder(256)) as kb:
        yield kb


def test_index_folder_recursive_and_search(kb: KnowledgeBase, docs: Path) -> None:
    report = kb.index_paths([docs])
    assert {Path(o.path).name: o.status for o in report.outcomes} == {
        "leave.txt": "added", "canteen.txt": "added", "guide.md": "added", "notes.txt": "added",
        "drawing.dwg": "skipped",
    }
    assert not report.failed
    assert {Path(d.source).name for d in kb.documents()} == {"leave.txt", "canteen.txt", "guide.md", "notes.txt"}
    top = kb.search("食堂几点开放", 1)[0]
    assert top.file_name == "canteen.txt"  # GBK file decoded correctly
    assert "七点" in top.text
    hit = kb.search("VPN port", 1)[0]
    assert hit.file_name == "guide.md"
    raw = Path(hit.source).read_text()
    assert raw[hit.start:hit.end] == hit.text  # offsets point into the file


def test_reindex_skips_unchanged_and_updates_edited(kb: KnowledgeBase, docs: Path) -> None:
    kb.index_paths([docs])
    before = kb.count()
    again = kb.index_paths([docs])
    assert {o.status for o in again.outcomes} == {"unchanged", "skipped"}
    assert kb.count() == before
    (docs / "guide.md").write_text("# IT\n\nThe VPN server now uses port 443.\n")
    edited = kb.index_paths([docs])
    assert [Path(o.path).name for o in edited.by_status("updated")] == ["guide.md"]
    texts = [s.text for s in kb.search("VPN port", 10) if s.file_name == "guide.md"]
    assert texts and all("443" in t and "1194" not in t for t in texts)


def test_bad_files_are_reported_and_the_rest_indexed(kb: KnowledgeBase, tmp_path: Path) -> None:
    d = tmp_path / "bad"
    d.mkdir()
    (d / "empty.txt").write_text("")
    (d / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj garbage")
    (d / "good.txt").write_text("This file is fine.")
    report = kb.index_paths([d, tmp_path / "missing.txt", d / "good.txt"])
    status = {Path(o.path).name: (o.status, o.reason) for o in report.outcomes}
    assert status["good.txt"][0] == "added"
    for name in ("empty.txt", "broken.pdf", "missing.txt"):
        assert status[name][0] == "failed"
        assert status[name][1]  # a reason is given
    assert "empty" in status["empty.txt"][1]
    assert kb.count() >= 1


def test_unsupported_file_named_directly_fails_with_reason(kb: KnowledgeBase, tmp_path: Path) -> None:
    f = tmp_path / "data.xyz"
    f.write_text("hello")
    [outcome] = kb.index_paths([f]).outcomes
    assert outcome.status == "failed" and ".xyz" in outcome.reason


def test_embedder_mismatch_is_refused(docs: Path) -> None:
    settings = load_settings()
    with KnowledgeBase.open(settings, "m", HashEmbedder(64)) as kb:
        kb.index_paths([docs / "guide.md"])
    with pytest.raises(EmbedderMismatchError, match="hash/64"):
        KnowledgeBase.open(settings, "m", HashEmbedder(128))
    KnowledgeBase.open(settings, "m", HashEmbedder(64)).close()  # the right one still opens


def test_names_listing_deleting_and_validation() -> None:
    settings = load_settings()
    KnowledgeBase.open(settings, "政策-2024", HashEmbedder(32)).close()
    assert kb_names(settings) == ["政策-2024"]
    delete_kb(settings, "政策-2024")
    assert kb_names(settings) == []
    with pytest.raises(KBError, match="invalid knowledge-base name"):
        KnowledgeBase.open(settings, "../escape", HashEmbedder(32))
    with pytest.raises(KBError, match="no knowledge base"):
        KnowledgeBase.open(settings, "absent", HashEmbedder(32), create=False)


def test_empty_knowledge_base_is_not_sent_to_the_model(kb: KnowledgeBase) -> None:
    from kb_assistant.assistant import Assistant
    from kb_assistant.generators.echo import EchoGenerator

    with pytest.raises(EmptyKnowledgeBaseError, match="is empty"):
        Assistant(kb, EchoGenerator(), kb.settings).ask("anything?")


def test_answer_cites_the_source_it_quotes(kb: KnowledgeBase, docs: Path) -> None:
    from kb_assistant.assistant import Assistant
    from kb_assistant.generators.echo import EchoGenerator

    kb.index_paths([docs])
    stream = Assistant(kb, EchoGenerator(context_window=4096), kb.settings).ask("食堂几点开放？")
    pieces = list(stream)
    answer = stream.result()
    assert len(pieces) > 1  # streamed in pieces
    assert answer.citations and answer.citations[0].source.file_name == "canteen.txt"
    assert not answer.citations[0].inferred
    assert answer.prompt_tokens <= 4096 - kb.settings.max_new_tokens


def test_a_new_knowledge_base_on_milvus_lite(docs: Path) -> None:
    pytest.importorskip("milvus_lite")
    settings = load_settings(store="milvus", chunk_size=120, chunk_overlap=20)
    with KnowledgeBase.open(settings, "on-milvus", HashEmbedder(64)) as kb:
        kb.index_paths([docs])
        assert kb.search("VPN port", 1)[0].file_name == "guide.md"
    with KnowledgeBase.open(settings.model_copy(update={"store": "faiss"}), "on-milvus", HashEmbedder(64)) as kb:
        assert kb.store.__class__.__name__ == "MilvusStore"  # the kb remembers where it lives
        assert kb.search("食堂几点开放", 1)[0].file_name == "canteen.txt"
    with pytest.raises(EmbedderMismatchError):
        KnowledgeBase.open(settings, "on-milvus", HashEmbedder(128))
