"""MilvusStore on a real Milvus server over TCP: several clients, server versions, errors, crashes.

The contract suite (test_contract.py) also runs on this server as its "milvus-server" backend.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("pymilvus", reason="pip install pymilvus to test Milvus")
pytest.importorskip("milvus", reason="pip install milvus==2.3.5 to test against a Milvus server")

from vectorstore import Record, VectorStoreError, open_store  # noqa: E402
from vectorstore.milvus_store import MilvusStore, read_manifest  # noqa: E402

from .conftest import DIM, unit_vectors  # noqa: E402
from .test_milvus_store import kill_writers_and_check  # noqa: E402


def test_manifest_records_the_server_and_a_second_client_sees_commits(
    tmp_path: Path, milvus_server: str, server_collections: Callable[[str], str]
) -> None:
    name = server_collections("shared")
    vecs = unit_vectors(12)
    writer = open_store(tmp_path / "kb", backend="milvus", dim=DIM, uri=milvus_server, collection=name,
                        token="root:Milvus")
    # Another app server: opened from the same manifest, its own connection.
    assert read_manifest(tmp_path / "kb") == {"uri": milvus_server, "collection": name}
    assert "Milvus" not in (tmp_path / "kb" / "milvus.json").read_text()  # the token is never written
    reader = open_store(tmp_path / "kb", backend="milvus")
    try:
        assert isinstance(reader, MilvusStore) and reader.uri == milvus_server
        writer.add([Record(i, vecs[i], {"source": "a.md"}) for i in range(4)])
        assert reader.count() == 4 and reader.search(vecs[2], 1)[0].id == 2  # no refresh needed
        with writer.batch():
            writer.replace_where({"source": "a.md"}, [Record(i, vecs[i + 4], {"source": "a.md", "v": 2})
                                                      for i in range(3)])
            writer.add([Record(10, vecs[10], {"source": "b.md"})])
            # Mid-batch, the reader still sees the last commit, all of it.
            assert reader.count() == 4 and {p.get("v") for _, p in reader.payloads()} == {None}
            assert len(reader.search(vecs[5], 10)) == 4
        assert reader.refresh() is True and reader.refresh() is False  # the commit, then nothing newer
        assert reader.ids() == [0, 1, 2, 10] and reader.count({"v": 2}) == 3
        assert reader.search(vecs[4], 1)[0].id == 0
        assert reader.get_meta()["generation"] == writer.get_meta()["generation"] == "2"
    finally:
        reader.close()
        writer.close()


def test_a_read_overlapping_another_process_commit_is_retried(
    tmp_path: Path, milvus_server: str, server_collections: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader loads generation G; before its query runs, a writer commits G+1 (the new rows)
    and deletes the rows they replace. Queried as of G the file would have no rows at all."""
    vecs = unit_vectors(8)
    where = {"uri": milvus_server, "collection": server_collections("race")}
    writer = MilvusStore.open(tmp_path / "w", dim=DIM, **where)
    reader = MilvusStore.open(tmp_path / "r", dim=DIM, **where)
    try:
        writer.add([Record(i, vecs[i], {"source": "a.md", "v": 1}) for i in range(4)])
        load_state = reader._load_state
        commits = iter([lambda: writer.replace_where({"source": "a.md"}, [
            Record(i, vecs[i + 4], {"source": "a.md", "v": 2}) for i in range(4)])])

        def load_then_let_the_writer_commit() -> None:
            load_state()
            commit = next(commits, None)
            if commit is not None:
                commit()

        monkeypatch.setattr(reader, "_load_state", load_then_let_the_writer_commit)
        hits = reader.search(vecs[5], 10)
        assert sorted(h.id for h in hits) == [0, 1, 2, 3] and {h.payload["v"] for h in hits} == {2}
        assert next(commits, None) is None  # the commit really happened inside the read
    finally:
        reader.close()
        writer.close()


def test_full_text_needs_milvus_2_5(
    tmp_path: Path, milvus_server: str, server_collections: Callable[[str], str]
) -> None:
    with pytest.raises(VectorStoreError, match=r"needs Milvus 2\.5 or later.*runs 2\.3"):
        MilvusStore.open(None, uri=milvus_server, collection=server_collections("ft"), dim=DIM, full_text=True)
    # "Where the server can" (what knowledge bases ask for): created without it, and says so.
    with MilvusStore.open(None, uri=milvus_server, collection=server_collections("auto"), dim=DIM,
                          full_text=None) as store:
        assert store.full_text is False
        with pytest.raises(VectorStoreError, match="full_text"):
            store.text_search("年假", 3)


def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.perf_counter()
    with pytest.raises(VectorStoreError, match="is the server running"):
        open_store(tmp_path, backend="milvus", dim=DIM, uri=f"http://127.0.0.1:{port}")
    assert time.perf_counter() - started < 60


def test_sigkill_of_a_writer_leaves_whole_batches_on_the_server(
    tmp_path: Path, milvus_server: str, server_collections: Callable[[str], str]
) -> None:
    """The commit protocol on a server: kill the writer anywhere, reopen, every batch whole."""
    where = [milvus_server, server_collections("crash")]
    assert kill_writers_and_check(tmp_path, runs=3, seed=99, pause=(0.5, 3.0), where=where) > 0


def test_kb_doctor_checks_the_milvus_server(milvus_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import socket

    from kb_assistant.cli import main

    assert main(["doctor", "--uri", milvus_server, "--json"]) == 0
    stores = json.loads(capsys.readouterr().out)["stores"]
    assert stores["backends"] == {"faiss": "usable", "milvus": "usable"}
    assert stores["server"] == {"uri": milvus_server, "version": "v2.3.5-lite", "full_text": False}
    assert main(["doctor", "--uri", milvus_server]) == 0
    assert "v2.3.5-lite, no full-text BM25 before 2.5" in capsys.readouterr().out
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["doctor", "--uri", f"http://127.0.0.1:{port}", "--json"]) == 0
    assert "is the server running" in json.loads(capsys.readouterr().out)["stores"]["server"]["error"]

