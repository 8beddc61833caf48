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
