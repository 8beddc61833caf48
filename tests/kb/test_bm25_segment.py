"""BM25 segment + delta: scores equal to plain Okapi BM25 wherever documents live, exact top-k pruning,
.npy files published in one commit, a version-2 file upgraded, a broken segment rebuilt, kill -9."""

from __future__ import annotations

import logging
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from kb_assistant.kb.bm25 import BM25Index

K1, B = 1.5, 0.75
WORDS = [f"w{i}" for i in range(60)]


def _text(rid: int, version: int = 0) -> str:
    """Zipf-ish word lists: common words in most documents, rare ones in few, repeats for tf > 1."""
    rng = random.Random(rid * 1000 + version)
    return " ".join(WORDS[min(int(rng.paretovariate(0.8)) - 1, len(WORDS) - 1)] for _ in range(rng.randint(0, 30)))


def _open(path: Path, **kw) -> BM25Index:
    return BM25Index.open(path, tokenizer=str.split, tokenizer_id="whitespace", **kw)


def reference(docs: dict[int, str], query: str, k: int) -> list[tuple[int, float]]:
    """Okapi BM25 as the SQLite engine computed it (Lucene IDF, distinct query terms), brute force."""
    tokens = {rid: text.split() for rid, text in docs.items()}
    n = len(tokens)
    avgdl = sum(len(t) for t in tokens.values()) / n if n else 0
    if not n or not avgdl:
        return []
    df = Counter(t for toks in tokens.values() for t in set(toks))
    scores: dict[int, float] = {}
    for term in sorted(set(query.split())):
        if not df[term]:
            continue
        idf = math.log(1.0 + (n - df[term] + 0.5) / (df[term] + 0.5))
        for rid, toks in tokens.items():
            tf = toks.count(term)
            if tf:
                scores[rid] = scores.get(rid, 0.0) + idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * len(toks) / avgdl))
    return sorted(scores.items(), key=lambda h: (-h[1], h[0]))[:k]


QUERIES = ["w0 w1", "w0 w5 w40", "w59", "w2 w3 w4 w30", "w0", "w1 w10 w20 w50 w58", "absent w7"]


def _assert_matches(idx: BM25Index, docs: dict[int, str], k: int = 5) -> None:
    for q in QUERIES:
        got, want = idx.search(q, k), reference(docs, q, k)
        assert [r for r, _ in got] == [r for r, _ in want], q
        assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-12), q


@pytest.mark.parametrize("delta_max", [0, 7, 10**9])  # all in segments, segment + delta, the delta alone
def test_scores_equal_okapi_bm25_through_removals_and_re_adds(tmp_path: Path, delta_max: int) -> None:
    docs: dict[int, str] = {}
    rng = random.Random(delta_max)
    with _open(tmp_path / "bm25.db", delta_max=delta_max) as idx:
        for step in range(12):
            added = {rng.randrange(200): _text(rng.randrange(10**6), step) for _ in range(rng.randint(1, 25))}
            removed = [rng.randrange(200) for _ in range(rng.randint(0, 8))]
            removed = [r for r in removed if r not in added]
            idx.apply(removed, added.items())
            for r in removed:
                docs.pop(r, None)
            docs.update(added)
            _assert_matches(idx, docs)
        assert idx.ids() == sorted(docs) and idx.count() == len(docs)
        first = sorted(docs)[:20]
        assert idx.terms_of(first) == {r: set(docs[r].split()) for r in first if docs[r]}
        within = ["w0", "w9", "nope"]
        assert idx.terms_of(sorted(docs), within) == {r: set(docs[r].split()) & set(within) for r in docs}
    with _open(tmp_path / "bm25.db", delta_max=delta_max) as idx:  # and from the files
        _assert_matches(idx, docs)


def test_pruned_top_k_equals_every_document_scored(tmp_path: Path) -> None:
    """MaxScore skips the common terms' postings only when no unseen document can enter the top k:
    every k, ties included (many documents are identical), equals the brute-force ranking."""
    docs = {rid: _text(rid % 150) for rid in range(600)}  # each text four times: ties
    with _open(tmp_path / "bm25.db", delta_max=0) as idx:
        idx.rebuild(docs.items())
        idx.apply([5, 17, 300], [])  # dead documents in the segment
        for r in (5, 17, 300):
            docs.pop(r)
        for k in (1, 3, 10, 40):
            _assert_matches(idx, docs, k)


@pytest.mark.parametrize("seed_docs", [None, 40])  # the threshold seeded from all or some rarest-term documents
def test_pruning_at_scale_equals_every_document_scored(tmp_path: Path, monkeypatch, seed_docs: int | None) -> None:
    """Enough documents that the rare terms name hundreds of candidates and most are dropped by their
    bounds before the common terms are looked up (the path every query takes at 1M chunks): every
    ranking equals brute force."""
    if seed_docs is not None:
        monkeypatch.setattr("kb_assistant.kb.bm25_segment.SEED_DOCS", seed_docs)
    rng = random.Random(7)
    vocab = [f"t{i}" for i in range(400)]

    def text() -> str:
        return " ".join(vocab[min(int(rng.paretovariate(0.6)) - 1, len(vocab) - 1)] for _ in range(rng.randint(5, 60)))

    docs = {rid: text() for rid in range(4000)}
    queries = [" ".join(rng.sample(vocab[:3], 1) + rng.sample(vocab[3:40], 2) + rng.sample(vocab[40:], 2))
               for _ in range(25)] + ["t0 t1 t2 t3", "t0 t399"]
    with _open(tmp_path / "bm25.db", delta_max=0) as idx:
        idx.rebuild(docs.items())
        for k in (1, 5, 30):
            for q in queries:
                got, want = idx.search(q, k), reference(docs, q, k)
                assert [r for r, _ in got] == [r for r, _ in want], (q, k)
                assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-12), (q, k)


def test_segment_is_npy_files_named_in_one_commit(tmp_path: Path) -> None:
    path = tmp_path / "bm25.db"
    with _open(path, delta_max=3) as idx:
        idx.add((r, _text(r)) for r in range(20))
        first = [p.name for p in tmp_path.glob("bm25.db.seg-*")]
        idx.add((r, _text(r, 1)) for r in range(20, 30))  # past the delta: a new segment replaces it
        second = [p.name for p in tmp_path.glob("bm25.db.seg-*")]
        assert len(first) == len(second) == 1 and first != second
        folder = tmp_path / second[0]
        assert sorted(p.suffix for p in folder.iterdir()) == [".json"] + [".npy"] * 11
        for f in folder.glob("*.npy"):
            np.load(f, allow_pickle=False)  # plain arrays: never pickle
    conn = sqlite3.connect(path)
    try:
        assert dict(conn.execute("SELECT key, value FROM meta"))["segment"] == second[0]
        assert conn.execute("SELECT COUNT(*) FROM docs").fetchone()[0] == 0  # the delta merged
    finally:
        conn.close()


@pytest.mark.parametrize("damage", ["delete", "truncate", "garbage", "folder"])
def test_a_broken_segment_empties_the_index_for_a_rebuild(tmp_path: Path, caplog, damage: str) -> None:
    path = tmp_path / "bm25.db"
    docs = {r: _text(r) for r in range(40)}
    with _open(path, delta_max=0) as idx:
        idx.add(docs.items(), source_generation=3, source_cursor="log:3")
    folder = next(tmp_path.glob("bm25.db.seg-*"))
    target = folder / "post_doc.npy"
    if damage == "delete":
        target.unlink()
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:-16])
    elif damage == "garbage":
        target.write_bytes(b"\x93NUMPY garbage")
    else:
        import shutil

        shutil.rmtree(folder)
    with caplog.at_level(logging.WARNING), _open(path, delta_max=0) as idx:
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and "rebuilt from the store" in warnings[0]
        # Empty and stale: no wrong answer, and the next sync re-reads every chunk from the store.
        assert idx.count() == 0 and idx.search("w0", 5) == [] and idx.is_stale(3)
        assert idx.source_cursor is None
        idx.apply([], docs.items(), source_generation=3)
        _assert_matches(idx, docs)


def test_a_version_2_file_opens_scores_the_same_and_moves_into_a_segment(tmp_path: Path) -> None:
    path = tmp_path / "bm25.db"
    docs = {r: _text(r) for r in range(30)}
    with _open(path) as idx:  # everything in the SQLite tables, as version 2 kept it
        idx.add(docs.items(), source_generation=1)
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE dead")
    conn.execute("PRAGMA user_version = 2")
    conn.close()
    with _open(path, delta_max=10) as idx:
        assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 3
        assert idx.source_generation == 1 and idx.count() == 30
        _assert_matches(idx, docs)
        idx.remove([4], source_generation=2)  # the first write past the delta's room merges
        docs.pop(4)
        assert list(tmp_path.glob("bm25.db.seg-*"))
        _assert_matches(idx, docs)


CHILD = textwrap.dedent("""
    import random, sys
    from kb_assistant.kb.bm25 import BM25Index
    sys.path.insert(0, sys.argv[2])
    from test_bm25_segment import _text
    idx = BM25Index.open(sys.argv[1], tokenizer=str.split, tokenizer_id="whitespace", delta_max=4)
    rng = random.Random(7)
    for step in range(10**6):
        added = {rng.randrange(60): step for _ in range(rng.randint(1, 6))}
        removed = [r for r in (rng.randrange(60) for _ in range(3)) if r not in added]
        idx.apply(removed, [(r, _text(r, v)) for r, v in added.items()], source_generation=step)
        print(step, flush=True)
""")


def _states() -> list[dict[int, str]]:
    """Every state the child commits, in order (its random operations replayed)."""
    rng, docs, out = random.Random(7), {}, []
    for step in range(400):
        added = {rng.randrange(60): step for _ in range(rng.randint(1, 6))}
        removed = [r for r in (rng.randrange(60) for _ in range(3)) if r not in added]
        for r in removed:
            docs.pop(r, None)
        docs.update({r: _text(r, v) for r, v in added.items()})
        out.append(dict(docs))
    return out


def test_kill_9_during_merges_leaves_one_whole_state(tmp_path: Path) -> None:
    """The child merges every few writes; killed at random moments, the index reopens as exactly the
    state of its last committed write (or the one after), with one segment folder left."""
    path = tmp_path / "bm25.db"
    states = _states()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")]))
    rng = random.Random(1)
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(Path(__file__).parent)], env=env,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        target = rng.randint(3, 30)
        last = -1
        for line in proc.stdout:
            last = int(line)
            if last >= target:
                break
        time.sleep(rng.random() * 0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with _open(path, delta_max=4) as idx:
            step = idx.source_generation
            assert step is not None and last <= step <= last + 40  # printed after its commit
            docs = states[step]
            assert idx.ids() == sorted(docs)
            _assert_matches(idx, docs)
        assert len(list(tmp_path.glob("bm25.db.seg-*"))) <= 1  # a half-written folder is removed
        path.unlink()
        for extra in tmp_path.iterdir():
            if extra.is_dir():
                import shutil

                shutil.rmtree(extra)
            else:
                extra.unlink()


def test_a_knowledge_base_syncs_edits_into_the_delta_and_gc_merges_them(tmp_path: Path) -> None:
    """Through the product path: the first sync bulk-builds a segment, an edit lands in the delta
    (the segment untouched), ``kb gc`` folds it into a new segment, and the edit is found throughout."""
    from kb_assistant.embedders import HashEmbedder
    from kb_assistant.kb import KnowledgeBase
    from kb_assistant.kb import bm25 as bm25_module
    from kb_assistant.settings import load_settings

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(8):
        text = "\n\n".join(f"第{i}号文件第{p}段：员工守则规定上班时间。" * 6 for p in range(5))
        (docs / f"f{i}.txt").write_text(text, encoding="utf-8")
    settings = load_settings(data_dir=tmp_path / "data", chunk_size=120, chunk_overlap=0)
    old = bm25_module.DELTA_MAX
    bm25_module.DELTA_MAX = 10  # fewer than the first sync's chunks: it builds a segment
    try:
        with KnowledgeBase.open(settings, "seg", HashEmbedder(64)) as kb:
            kb.index_paths([docs])
            keyword = kb.keyword_index()
            assert keyword.search("员工守则", 3)
            segments = sorted(p.name for p in kb.directory.glob("bm25.sqlite.seg-*"))
            assert len(segments) == 1
            (docs / "f3.txt").write_text("修订后的报销流程需要部门经理签字。", encoding="utf-8")
            kb.index_paths([docs])
            hits = keyword.search("报销流程 部门经理", 3)
            assert hits and kb.store.get([hits[0][0]])[0].payload["source"].endswith("f3.txt")
            assert sorted(p.name for p in kb.directory.glob("bm25.sqlite.seg-*")) == segments  # in the delta
            kb.gc()
            after = sorted(p.name for p in kb.directory.glob("bm25.sqlite.seg-*"))
            assert len(after) == 1 and after != segments
            assert keyword.search("报销流程 部门经理", 3)[0][0] == hits[0][0]
            old_text = keyword.search("第3号文件", 50)
            assert all(not kb.store.get([r])[0].payload["source"].endswith("f3.txt") for r, _ in old_text)
    finally:
        bm25_module.DELTA_MAX = old


CAPPED = textwrap.dedent("""
    import resource, signal, sys
    sys.path.insert(0, sys.argv[2])
    from test_bm25_segment import _text
    from kb_assistant.kb.bm25 import BM25Index
    idx = BM25Index.open(sys.argv[1], tokenizer=str.split, tokenizer_id="whitespace", delta_max=0)
    idx.add([(r, _text(r)) for r in range(50)], source_generation=1)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))  # files past 64 kB fail with EFBIG
    try:
        idx.add([(r, _text(r)) for r in range(50, 20000)], source_generation=2)
    except OSError as exc:
        print("failed", exc.errno, flush=True)
""")


def test_a_full_disk_while_writing_a_segment_leaves_the_previous_one(tmp_path: Path) -> None:
    path = tmp_path / "bm25.db"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", CAPPED, str(path), str(Path(__file__).parent)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.stdout.split() == ["failed", str(__import__("errno").EFBIG)], done.stderr[-2000:]
    assert len(list(tmp_path.glob("bm25.db.seg-*"))) == 1  # the half-written folder was removed
    with _open(path, delta_max=0) as idx:
        assert idx.source_generation == 1
        _assert_matches(idx, {r: _text(r) for r in range(50)})


def test_no_room_for_a_segment_keeps_the_keyword_index_answering_from_memory(tmp_path: Path, caplog,
                                                                             monkeypatch) -> None:
    """A first sync that cannot write its segment (the disk full: ENOSPC while writing its arrays,
    SQLite's few pages written fine) warns once and keeps the index in memory for this process, as a
    full disk under the SQLite file does."""
    import errno

    from kb_assistant.embedders import HashEmbedder
    from kb_assistant.kb import KnowledgeBase, bm25_segment
    from kb_assistant.kb import bm25 as bm25_module
    from kb_assistant.settings import load_settings

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(30):
        text = "\n\n".join(f"第{i}号文件第{p}段：{_text(i * 10 + p)}" for p in range(10))
        (docs / f"f{i}.txt").write_text(text, encoding="utf-8")
    settings = load_settings(data_dir=tmp_path / "data", chunk_size=120, chunk_overlap=0)
    real_write = bm25_segment._write_npy

    def full_disk(path: Path, arr: np.ndarray) -> None:
        real_write(path, arr[: len(arr) // 2])  # part of it written, then no space left
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(bm25_module, "DELTA_MAX", 0)
    monkeypatch.setattr(bm25_segment, "_write_npy", full_disk)
    with KnowledgeBase.open(settings, "full", HashEmbedder(64)) as kb:
        kb.index_paths([docs])
        keyword = kb.keyword_index()
        with caplog.at_level(logging.WARNING):
            hits = keyword.search("第17号文件", 3)
        assert hits and kb.store.get([hits[0][0]])[0].payload["source"].endswith("f17.txt")
        assert [r.getMessage() for r in caplog.records if "keeping it in memory" in r.getMessage()]
        assert not list(kb.directory.glob("bm25.sqlite.seg-*"))  # the half-written folder removed


def test_a_merge_by_another_connection_is_seen_by_the_next_read(tmp_path: Path) -> None:
    path = tmp_path / "bm25.db"
    docs = {r: _text(r) for r in range(30)}
    with _open(path, delta_max=0) as writer, _open(path, delta_max=0) as reader:
        writer.add(docs.items())
        _assert_matches(reader, docs)
        before = reader._segment.name
        writer.apply([3, 4], [(100, "w0 w59 w59")])  # a new segment; the one the reader mapped is deleted
        docs = {**{r: t for r, t in docs.items() if r not in (3, 4)}, 100: "w0 w59 w59"}
        _assert_matches(reader, docs)
        assert reader._segment.name != before and reader.ids() == sorted(docs)


@pytest.mark.parametrize("mode", ["hybrid", "dense"])
def test_indexing_brings_the_keyword_index_in_step_before_any_search(tmp_path: Path, mode: str) -> None:
    """The writer takes the keyword index's sync (and a full delta's merge), not the next search; a
    dense-only knowledge base never builds one."""
    from kb_assistant.embedders import HashEmbedder
    from kb_assistant.kb import KnowledgeBase
    from kb_assistant.kb.keyword import BM25_FILE
    from kb_assistant.settings import load_settings

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(3):
        (docs / f"f{i}.txt").write_text(f"第{i}号文件：员工守则规定上班时间。", encoding="utf-8")
    settings = load_settings(data_dir=tmp_path / "data", retrieval_mode=mode)
    with KnowledgeBase.open(settings, "ready", HashEmbedder(64)) as kb:
        kb.index_paths([docs])
        path = kb.directory / BM25_FILE
        if mode == "dense":
            assert not path.exists()
            return
        with BM25Index.open(path) as fresh:  # what a searching process finds on disk
            assert not fresh.is_stale(int(kb.store.generation)) and fresh.count() == kb.count() == 3
        kb.remove([docs / "f1.txt"])
        with BM25Index.open(path) as fresh:
            assert not fresh.is_stale(int(kb.store.generation)) and fresh.count() == 2
