"""Milvus backend specifics: filter translation, commit protocol and crash repair, manifest, full text."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

pytest.importorskip("pymilvus", reason="pip install pymilvus milvus-lite to test Milvus")
pytest.importorskip("milvus_lite", reason="pip install pymilvus milvus-lite to test Milvus")

from vectorstore import Record, StoreLockedError, StoreNotFoundError, VectorStoreError, open_store  # noqa: E402
from vectorstore.milvus_store import MANIFEST, MilvusStore, default_collection, read_manifest  # noqa: E402
from vectorstore.milvus_where import milvus_expr, quote  # noqa: E402
from vectorstore.where import matches  # noqa: E402

from .conftest import DIM, unit_vectors  # noqa: E402
from .test_where import FILTERS, PAYLOADS  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_where_translation_agrees_with_python(tmp_path: Path) -> None:
    payloads = [p for p in PAYLOADS if p.get("page") != 2**70]  # beyond int64: Milvus JSON refuses it
    payloads.append({"source": 'q"uo\\te\n\t😀'})
    filters = [*FILTERS, {"source": 'q"uo\\te\n\t😀'}, {"ok": 1}, {"page": True}]
    vecs = unit_vectors(len(payloads))
    with open_store(tmp_path, backend="milvus", dim=DIM) as store:
        store.add([Record(i, vecs[i], p) for i, p in enumerate(payloads)])
        for where in filters:
            expected = [i for i, p in enumerate(payloads) if matches(p, where)]
            assert store.ids(where) == expected, where
            assert store.count(where) == len(expected), where
            assert sorted(h.id for h in store.search(vecs[0], 50, where=where)) == expected, where


def test_expressions_are_escaped() -> None:
    assert quote('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
    assert milvus_expr({"source": "x.md"}) == ('payload["source"] == "x.md"', True)
    assert milvus_expr({"weird key": None}) == ("", False)


def test_commit_survives_a_failure_after_the_commit_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = MilvusStore.open(tmp_path, dim=DIM)
    vecs = unit_vectors(6)
    store.add([Record(i, vecs[i], {"source": "a.md"}) for i in range(3)])
    new = [Record(i, vecs[i + 3], {"source": "a.md", "v": 2}) for i in range(3)]

    def lost_connection(pks: object) -> None:
        raise ConnectionError("server went away after the commit")

    monkeypatch.setattr(store, "_delete_pks", lost_connection)
    with pytest.raises(ConnectionError):
        store.replace_where({"source": "a.md"}, new)
    # Committed: readers see exactly the new rows; the old ones are hidden by the journal.
    assert store.count() == 3 and all(p["v"] == 2 for _, p in store.payloads())
    assert [h.id for h in store.search(vecs[3], 1)] == [0]
    assert store.get_meta()["generation"] == "2"
    store.close()
    store = MilvusStore.open(tmp_path, dim=DIM)  # repairs: deletes the journal's rows, clears it
    assert store._state["journal"] == []
    assert store._client.query(store.collection, filter="pk >= 0", output_fields=["count(*)"])[0]["count(*)"] == 3
    assert store.count() == 3
    store.close()


def test_rows_of_an_uncommitted_batch_are_invisible_then_removed(tmp_path: Path) -> None:
    store = MilvusStore.open(tmp_path, dim=DIM)
    vecs = unit_vectors(4)
    store.add([Record(0, vecs[0], {"source": "a.md"})])
    # What a writer killed before its commit point leaves behind: rows born in the next generation.
    store._client.insert(store.collection, [{"rid": 9, "born": 2, "vector": vecs[1].tolist(), "payload": {}}])
    assert store.ids() == [0] and store.get([9]) == [None] and len(store.search(vecs[1], 5)) == 1
    store.close()
    store = MilvusStore.open(tmp_path, dim=DIM)
    assert store._client.query(store.collection, filter="pk >= 0", output_fields=["count(*)"])[0]["count(*)"] == 1
    store.add([Record(9, vecs[1], {})])  # the id is free
    assert store.ids() == [0, 9]
    store.close()


CRASH_WRITER = """
    import itertools, sys, numpy as np
    from vectorstore import open_store, Record
    where = dict(zip(("uri", "collection"), sys.argv[3:5]))  # a server's, if given
    store = open_store(sys.argv[1], backend="milvus", dim={dim}, **where)
    print("ready", flush=True)
    rng = np.random.default_rng()
    for step in itertools.count():
        base = (int(sys.argv[2]) * 1_000_000) + step * 100
        vecs = rng.standard_normal((20, {dim})).astype(np.float32)
        recs = [Record(base + i, vecs[i], {{"source": f"f{{step % 7}}", "batch": base}}) for i in range(20)]
        if step % 3 == 0:
            store.replace_where({{"source": f"f{{step % 7}}"}}, recs)
        elif step % 3 == 1:
            store.add(recs)
        else:
            with store.batch():
                store.add(recs[:10])
                store.delete_where({{"source": f"f{{(step + 3) % 7}}"}})
                store.add(recs[10:])
"""


def kill_writers_and_check(directory: Path, *, runs: int, seed: int, pause: tuple[float, float],
                           where: Sequence[str] = ()) -> int:
    """Start CRASH_WRITER ``runs`` times, SIGKILL it after a random pause, reopen the store writable
    (which repairs) and check that every batch is whole and no row is doubled; returns the count."""
    rng = random.Random(seed)
    code = textwrap.dedent(CRASH_WRITER.format(dim=DIM))
    total = 0
    for run in range(runs):
        child = subprocess.Popen([sys.executable, "-c", code, str(directory), str(run), *where],
                                 stdout=subprocess.PIPE, text=True, env=child_env())
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(*pause))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        with open_store(directory, backend="milvus", dim=DIM) as store:
            sizes = Counter(p["batch"] for _, p in store.payloads())
            assert all(n == 20 for n in sizes.values()), sizes
            assert not duplicated_pks(store)
            total = store.count()
            assert len(store.search(unit_vectors(1)[0], 10_000)) == total == sum(sizes.values())
    return total


def test_sigkill_at_random_moments_leaves_whole_batches(tmp_path: Path) -> None:
    assert kill_writers_and_check(tmp_path, runs=4, seed=1234, pause=(0.1, 1.0)) > 0


def duplicated_pks(store: MilvusStore) -> list[int]:
    """Primary keys present more than once in the collection, committed or not."""
    raw = store._client.query(store.collection, filter="pk >= 0", output_fields=["pk"], limit=16384)
    return [pk for pk, n in Counter(r["pk"] for r in raw).items() if n > 1]


KILLED_IN_FLUSH = """
    import os, sys, numpy as np
    import milvus_lite.storage.wal as wal
    from vectorstore import open_store, Record
    store = open_store(sys.argv[1], backend="milvus", dim={dim})
    vecs = np.random.default_rng(0).standard_normal((30, {dim})).astype(np.float32)
    store.add([Record(i, vecs[i], {{"source": "a.md"}}) for i in range(30)])
    # Die where Milvus Lite has saved the flushed rows and committed its manifest but not yet
    # deleted the write-ahead log that holds the same rows.
    wal.WAL.close_and_delete = lambda self: os._exit(9)
    store.flush()
"""


def test_kill_between_flush_commit_and_log_deletion_duplicates_nothing(tmp_path: Path) -> None:
    """Milvus Lite 3.2 replays such a log over the saved rows (every row twice); we drop it first."""
    code = textwrap.dedent(KILLED_IN_FLUSH.format(dim=DIM))
    child = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=child_env(), capture_output=True)
    assert child.returncode == 9, child.stderr.decode()[-2000:]
    wal_files = list((tmp_path / "milvus.db").glob("collections/*/wal/wal_data_*.arrow"))
    assert wal_files, "the kill should have left a flushed write-ahead log behind"
    with MilvusStore.open(tmp_path, dim=DIM) as store:
        assert not duplicated_pks(store)
        assert store.count() == 30 and store.ids() == list(range(30))
        assert len(store.search(unit_vectors(1)[0], 100)) == 30
    assert not any(f.exists() for f in wal_files)


def test_second_process_gets_a_clear_lock_error(tmp_path: Path) -> None:
    code = f"""
        import time
        from vectorstore import open_store
        store = open_store({str(tmp_path)!r}, backend="milvus", dim={DIM})
        print("ready", flush=True)
        time.sleep(30)
    """
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True,
                             env=child_env())
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLockedError, match="one process at a time"):
            open_store(tmp_path, backend="milvus", dim=DIM)
    finally:
        child.kill()
        child.wait()


def test_manifest_uri_and_collection(tmp_path: Path) -> None:
    kb_dir = tmp_path / "kbs" / "财务-2024" / "store"
    elsewhere = tmp_path / "shared" / "all.db"
    elsewhere.parent.mkdir()
    with open_store(kb_dir, backend="milvus", dim=DIM, uri=str(elsewhere)) as store:
        store.add([Record(1, unit_vectors(1)[0], {})])
        name = store.collection
    assert name == default_collection(kb_dir) and name.startswith("kb_2024_")
    assert read_manifest(kb_dir) == {"uri": str(elsewhere.resolve()), "collection": name}
    assert not (kb_dir / "milvus.db").exists()
    # Once created, the manifest wins over a uri meant for new stores; the token is never written.
    with open_store(kb_dir, backend="milvus", uri="http://unused:19530", token="secret") as store:
        assert store.count() == 1
    assert "secret" not in (kb_dir / MANIFEST).read_text()
    assert default_collection(tmp_path / "kbs" / "policies" / "store") == "kb_policies"


def test_open_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError):
        open_store(tmp_path / "none", backend="milvus", create=False)
    with pytest.raises(VectorStoreError, match="neither http"):
        open_store(tmp_path, backend="milvus", dim=DIM, uri="/tmp/not-a-db-file")
    with open_store(tmp_path / "ro", backend="milvus", dim=DIM) as store:
        store.add([Record(1, unit_vectors(1)[0], {})])
    with open_store(tmp_path / "ro", backend="milvus", read_only=True) as store:
        assert store.count() == 1
        with pytest.raises(VectorStoreError, match="read_only"):
            store.delete([1])


def test_text_search_with_jieba_bm25(tmp_path: Path) -> None:
    texts = [
        "年假政策：正式员工每年享有十五天带薪年假。",
        "报销流程：先提交申请，再由经理审批，三十天内报销。",
        "The VPN server uses port 1194; reset your token at the portal.",
        "机器学习是人工智能的一个分支，年假期间也可以学习。",
    ]
    vecs = unit_vectors(len(texts))
    with open_store(tmp_path, backend="milvus", dim=DIM, full_text=True) as store:
        store.add([Record(i, vecs[i], {"text": t, "source": f"{i}.md"}) for i, t in enumerate(texts)])
        hits = store.text_search("年假有几天", 3)
        assert [h.id for h in hits][:2] == [0, 3] and hits[0].score > hits[1].score > 0
        assert [h.id for h in store.text_search("VPN port", 3)] == [2]
        assert [h.id for h in store.text_search("年假", 3, where={"source": "3.md"})] == [3]
        store.replace_where({"source": "0.md"}, [Record(0, vecs[0], {"text": "病假需要医生证明", "source": "0.md"})])
        assert [h.id for h in store.text_search("年假", 3)] == [3]
    with open_store(tmp_path / "plain", backend="milvus", dim=DIM) as store:
        with pytest.raises(VectorStoreError, match="full_text"):
            store.text_search("年假", 3)


def test_full_text_of_chooses_what_the_bm25_field_gets(tmp_path: Path) -> None:
    vecs = unit_vectors(2)
    records = [Record(0, vecs[0], {"text": "十五天带薪", "title": "年假"}), Record(1, vecs[1], {"text": "医生证明"})]
    with open_store(tmp_path, backend="milvus", dim=DIM, full_text=True,
                    full_text_of=lambda p: f"{p.get('title', '')} {p['text']}") as store:
        store.add(records)
        assert [h.id for h in store.text_search("年假", 3)] == [0]  # found by a word outside payload["text"]
        assert store.get([0])[0].payload == records[0].payload  # the payload is stored as given
