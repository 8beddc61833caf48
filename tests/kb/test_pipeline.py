"""Read-ahead indexing: the next files are parsed while a batch embeds, in order, within a bound."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kb_assistant.embedders import HashEmbedder
from kb_assistant.kb import KnowledgeBase
from kb_assistant.kb.embed_cache import embed_with_cache
from kb_assistant.kb.files import Candidate
from kb_assistant.kb.indexer import Indexer
from kb_assistant.kb.pipeline import read_ahead
from kb_assistant.settings import load_settings


def _candidates(tmp_path: Path, n: int) -> list[Candidate]:
    out = []
    for i in range(n):
        path = tmp_path / f"f{i:02d}.txt"
        path.write_text(f"file {i}", encoding="utf-8")
        out.append(Candidate(path))
    return out


def test_read_ahead_keeps_order_bounds_memory_and_carries_errors(tmp_path: Path) -> None:
    cands = _candidates(tmp_path, 30)
    cands[5].path.unlink()  # gone before hashing: reported, not fatal
    cands.insert(3, Candidate(tmp_path / "x.bin", skipped="unsupported type .bin"))
    known = {str(cands[1].path): "stale", str(cands[2].path): "?"}
    held: list[int] = []
    parsed: list[str] = []
    lock = threading.Lock()

    def parse(cand: Candidate) -> list[Any]:
        if cand.path.name == "f07.txt":
            raise ValueError("cannot parse f07")
        with lock:
            parsed.append(cand.path.name)
            held.append(len(parsed) - taken[0])
        return ["chunk"] * 3

    taken = [0]
    items = []
    for item in read_ahead(cands, known, parse, max_chunks=9, max_files=100):
        items.append(item)
        with lock:
            taken[0] = len([i for i in items if i.chunks])
    assert [i.candidate for i in items] == cands
    assert max(held) <= 3 + 1  # 9 chunks ahead = 3 files, plus the one being parsed
    assert items[3].content_hash is None and items[3].chunks is None  # skipped: not even hashed
    assert isinstance(items[6].error, Exception) and items[6].content_hash is None  # f05, deleted
    with pytest.raises(ValueError, match="f07"):
        items[8].take_chunks()
    assert items[1].take_chunks() == ["chunk"] * 3  # changed since indexed: parsed ahead


def test_closing_read_ahead_stops_its_thread(tmp_path: Path) -> None:
    ahead = read_ahead(_candidates(tmp_path, 50), {}, lambda c: ["c"], max_chunks=2)
    next(ahead)
    ahead.close()
    assert not [t for t in threading.enumerate() if t.name == "kb-read-ahead"]


def test_files_are_parsed_while_a_batch_embeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedder's first batch waits (bounded) until later files have been parsed: only a parse that
    runs beside the embedding lets it through."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(8):
        (docs / f"d{i}.txt").write_text(f"第{i}号文件。" + "年假规定。" * 30, encoding="utf-8")
    parsed: list[Path] = []
    enough = threading.Event()
    original = Indexer._parse_ahead

    def spy(self: Indexer, cand: Candidate) -> Any:
        out = original(self, cand)
        parsed.append(cand.path)
        if len(parsed) >= 4:
            enough.set()
        return out

    monkeypatch.setattr(Indexer, "_parse_ahead", spy)
    seen_at_first_batch: list[int] = []

    class Waiting(HashEmbedder):
        def embed_documents(self, texts: list[str]) -> np.ndarray:
            if not seen_at_first_batch:
                enough.wait(30)
                seen_at_first_batch.append(len(parsed))
            return super().embed_documents(texts)

    settings = load_settings(embed_batch_size=1)  # every file is a batch of its own
    with KnowledgeBase.open(settings, "overlap", Waiting(64)) as kb:
        report = kb.index_paths([docs])
    assert len(report.by_status("added")) == 8
    assert seen_at_first_batch[0] >= 4


def test_embedding_batches_are_sorted_by_length() -> None:
    texts = ["a" * n for n in (50, 3, 40, 2, 41, 1)]
    batches: list[list[int]] = []

    def embed(batch: list[str]) -> np.ndarray:
        batches.append([len(t) for t in batch])
        return np.ones((len(batch), 4), np.float32)

    embed_with_cache(texts, embed, "e", 4, None, batch_size=2)
    assert batches == [[1, 2], [3, 40], [41, 50]]


@pytest.mark.parametrize("moment", ["hashed", "parsed"])
def test_a_file_deleted_after_the_read_ahead_read_it_fails_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moment: str,
) -> None:
    """The read-ahead thread hashed (or hashed and parsed) a file, then it is deleted before the indexer
    takes it: that file gets one clear line, the others are indexed, and the knowledge base stays whole
    (an older indexed version is kept, marked stale, until --prune). Deterministic: the hook deletes it."""
    from kb_assistant.kb import pipeline

    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("a", "b", "c", "d"):
        (docs / f"{name}.txt").write_text(f"文件{name}：年假规定。", encoding="utf-8")
    settings = load_settings()
    with KnowledgeBase.open(settings, "vanish", HashEmbedder(64)) as kb:
        kb.index_paths([docs / "a.txt"])
    (docs / "a.txt").write_text("文件a：新版本。", encoding="utf-8")  # changed, so it is parsed again
    doomed = {(docs / "a.txt").resolve(), (docs / "b.txt").resolve()}

    if moment == "hashed":  # deleted between hashing and parsing
        original_hash = pipeline.file_sha256

        def hash_then_delete(path: Path) -> str:
            digest = original_hash(path)
            if path.resolve() in doomed:
                path.unlink()
            return digest

        monkeypatch.setattr(pipeline, "file_sha256", hash_then_delete)
    else:  # parsed ahead, deleted before the indexer takes its chunks
        original_parse = Indexer._parse_ahead

        def parse_then_delete(self: Indexer, cand: Candidate) -> Any:
            chunks = original_parse(self, cand)
            if cand.path.resolve() in doomed:
                cand.path.unlink()
            return chunks

        monkeypatch.setattr(Indexer, "_parse_ahead", parse_then_delete)

    with KnowledgeBase.open(settings, "vanish", HashEmbedder(64)) as kb:
        report = kb.index_paths([docs])
        failed = {Path(o.path).name: o.reason for o in report.by_status("failed")}
        assert set(failed) == {"a.txt", "b.txt"}
        for name, reason in failed.items():
            assert name in reason and "deleted while" in reason and "\n" not in reason, reason
        assert "marked stale" in failed["a.txt"]  # its indexed version keeps answering, flagged
        assert sorted(Path(o.path).name for o in report.by_status("added")) == ["c.txt", "d.txt"]
        docs_now = {Path(d.source).name: d for d in kb.documents()}
        assert set(docs_now) == {"a.txt", "c.txt", "d.txt"} and docs_now["a.txt"].stale
        assert kb.count() == 3
    monkeypatch.undo()
    with KnowledgeBase.open(settings, "vanish", HashEmbedder(64), create=False) as kb:  # opens, answers, prunes
        assert Path(kb.search("文件c", 1)[0].source).name == "c.txt"
        again = kb.index_paths([docs], prune=True)
        assert [Path(o.path).name for o in again.by_status("removed")] == ["a.txt"]
        assert sorted(Path(d.source).name for d in kb.documents()) == ["c.txt", "d.txt"]
