"""Size-dependent index kind: exact (flat) while small, IVF past ``ann_threshold``; real FAISS + SQLite."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from vectorstore import FaissStore, Record
from vectorstore import faiss_index as fx

DIM = 32
THRESHOLD = 2000


def clustered(n: int, *, seed: int = 0, clusters: int = 40) -> np.ndarray:
    """Normalised points around fixed random centres (the same centres for every seed)."""
    centers = np.random.default_rng(1234).standard_normal((clusters, DIM)).astype(np.float32)
    rng = np.random.default_rng(seed)
    x = centers[rng.integers(0, clusters, n)] + rng.standard_normal((n, DIM)).astype(np.float32) * 0.6
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def add(store: FaissStore, vecs: np.ndarray, start: int = 0) -> None:
    store.add([Record(start + i, v, {"source": f"s{(start + i) % 50}.md"}) for i, v in enumerate(vecs)])


def sidecar(directory: Path) -> dict:
    return json.loads((directory / "index.json").read_text())


def open_ivf(directory: Path, **kw: object) -> FaissStore:
    return FaissStore.open(directory, dim=DIM, **{"ann_threshold": THRESHOLD, **kw})  # type: ignore[arg-type]


@pytest.fixture
def ivf_store(tmp_path: Path) -> Iterator[tuple[FaissStore, np.ndarray]]:
    store = open_ivf(tmp_path)
    vecs = clustered(3000)
    add(store, vecs)
    yield store, vecs
    store.close()


def test_resolve_kind_and_spec_validation() -> None:
    assert fx.resolve_kind("auto", 99_999) == "flat" and fx.resolve_kind("auto", 100_000) == "ivf"
    assert fx.resolve_kind("flat", 10**9) == "flat"
    assert fx.resolve_kind("auto", 1500, threshold=2000) == "flat"
    assert fx.resolve_kind("auto", 1500, threshold=2000, current="ivf") == "ivf"  # hysteresis
    assert fx.resolve_kind("auto", 999, threshold=2000, current="ivf") == "flat"
    for bad in ({"ann_threshold": 0}, {"nprobe": 0}, {"index_kind": "hnsw"}):
        with pytest.raises(ValueError):
            FaissStore.open(Path("/nonexistent/never-created"), dim=DIM, **bad)  # type: ignore[arg-type]


def test_auto_switches_to_ivf_past_the_threshold(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = open_ivf(tmp_path)
    vecs = clustered(2500)
    add(store, vecs[:1500])
    assert fx.kind_of(store._mirror.index) == "flat" and sidecar(tmp_path)["kind"] == "flat"
    add(store, vecs[1500:], start=1500)
    assert fx.kind_of(store._mirror.index) == "ivf"
    info = sidecar(tmp_path)
    assert info["kind"] == "ivf" and info["ntotal"] == 2500
    assert info["params"] == {"nlist": fx.nlist_for(2500), "nprobe": fx.DEFAULT_NPROBE}
    assert sorted(fx.index_ids(store._mirror.index).tolist()) == list(range(2500))
    assert store.search(vecs[2000], 1)[0].id == 2000
    store.close()
    with caplog.at_level(logging.INFO, logger="vectorstore"):
        store = open_ivf(tmp_path, nprobe=4)
    assert "rebuilding" not in caplog.text  # reopening keeps the saved IVF index
    assert fx.kind_of(store._mirror.index) == "ivf" and store.index_ntotal == 2500
    assert fx.index_params(store._mirror.index)["nprobe"] == 4  # search tuning applies to the loaded index
    store.close()


def test_ivf_recall_against_exact(ivf_store: tuple[FaissStore, np.ndarray]) -> None:
    store, vecs = ivf_store
    assert fx.kind_of(store._mirror.index) == "ivf"
    queries = clustered(100, seed=7)
    truth = np.argsort(-(queries @ vecs.T), axis=1)[:, :10]
    found = [[h.id for h in hits] for hits in store.search_many(queries, 10)]
    recall = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth.tolist(), found, strict=True)])
    assert recall >= 0.9, recall


def test_ivf_deletions_really_remove(ivf_store: tuple[FaissStore, np.ndarray]) -> None:
    store, vecs = ivf_store
    doomed = list(range(0, 3000, 5))
    store.delete(doomed)
    assert store.index_ntotal == store.count() == 2400
    assert fx.kind_of(store._mirror.index) == "ivf"
    assert set(fx.index_ids(store._mirror.index).tolist()).isdisjoint(doomed)
    for i in doomed[:50]:
        hits = store.search(vecs[i], 50)
        assert len(hits) == 50 and i not in {h.id for h in hits}
    store.delete_where({"source": "s1.md"})
    assert store.index_ntotal == store.count() == 2400 - 60  # ids 1 mod 50: none deleted above


def test_filtered_search_on_ivf_is_complete_and_exact(ivf_store: tuple[FaissStore, np.ndarray]) -> None:
    store, vecs = ivf_store
    query = clustered(1, seed=3)[0]
    members = [i for i in range(3000) if i % 50 == 7]  # 60 records scattered over many lists
    hits = store.search(query, 20, where={"source": "s7.md"})
    expected = sorted(members, key=lambda i: -float(vecs[i] @ query))[:20]
    assert [h.id for h in hits] == expected


def test_ivf_falls_back_to_flat_when_it_shrinks_well_below(ivf_store: tuple[FaissStore, np.ndarray]) -> None:
    store, vecs = ivf_store
    store.delete(range(1500))  # 1500 left: above half the threshold, stays IVF
    assert fx.kind_of(store._mirror.index) == "ivf"
    store.delete(range(1500, 2100))  # 900 left
    assert fx.kind_of(store._mirror.index) == "flat" and store.index_ntotal == 900
    assert store.search(vecs[2500], 1)[0].id == 2500


@pytest.mark.parametrize("damage", ["kind", "garbage", "corrupt", "threshold"])
def test_broken_or_mismatched_ivf_cache_is_rebuilt(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_ivf(tmp_path)
    vecs = clustered(2500)
    add(store, vecs)
    store.delete(range(10))
    store.close()
    kw: dict[str, object] = {}
    if damage == "kind":
        (tmp_path / "index.json").write_text(json.dumps({**sidecar(tmp_path), "kind": "flat"}))
    elif damage == "garbage":
        (tmp_path / "index.json").write_text('["not", "a", "sidecar"]')
    elif damage == "corrupt":
        (tmp_path / "index.faiss").write_bytes((tmp_path / "index.faiss").read_bytes()[:100])
    else:  # reopened with settings that want exact search at this size
        kw = {"ann_threshold": 10_000}
    with caplog.at_level(logging.INFO, logger="vectorstore"):
        store = open_ivf(tmp_path, **kw)
    assert "rebuilding" in caplog.text
    want = "flat" if damage == "threshold" else "ivf"
    assert fx.kind_of(store._mirror.index) == want and sidecar(tmp_path)["kind"] == want
    assert store.index_ntotal == store.count() == 2490
    assert sorted(fx.index_ids(store._mirror.index).tolist()) == list(range(10, 2500))
    assert store.search(vecs[100], 1)[0].id == 100
    assert 5 not in {h.id for h in store.search(vecs[5], 20)}
    store.close()


def test_ivf_is_retrained_once_the_store_outgrows_it() -> None:
    vecs = clustered(10_000)
    spec = fx.IndexSpec(ann_threshold=THRESHOLD)
    index = fx.build_index(spec, DIM, np.arange(2000), vecs[:2000])
    assert fx.kind_of(index) == "ivf" and not fx.needs_rebuild(index, spec)
    index.add_with_ids(vecs[2000:], np.arange(2000, 10_000))
    assert fx.needs_rebuild(index, spec)  # 5x its training size: lists too few for the data


def _lists(store: FaissStore) -> list[list[int]]:
    """Each IVF list's ids, sorted: where every vector sits."""
    ivf = fx.import_faiss().extract_index_ivf(store._mirror.index)
    invlists = ivf.invlists
    out = []
    for i in range(ivf.nlist):
        n = invlists.list_size(i)
        ids = fx.import_faiss().rev_swig_ptr(invlists.get_ids(i), n) if n else []
        out.append(sorted(int(x) for x in ids))
    return out


def _forge_lists(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    """Rewrite the list numbers of the log's first ``P`` op with ``change(lists)``, CRC fixed."""
    import zlib

    from vectorstore import faiss_log

    data = bytearray(path.read_bytes())
    head = faiss_log.HEADER_LEN
    length = faiss_log._RECORD.unpack_from(data, head)[1]
    body = head + faiss_log._RECORD.size
    offset = body + faiss_log._BODY.size
    while True:
        kind, count = faiss_log._OP.unpack_from(data, offset)
        offset += faiss_log._OP.size + 8 * count
        if kind == b"P":
            break
        offset += 4 * count * DIM if kind == b"A" else 0
    lists = np.frombuffer(bytes(data[offset:offset + 8 * count]), dtype="<i8")
    data[offset:offset + 8 * count] = np.asarray(change(lists), dtype="<i8").tobytes()
    faiss_log._RECORD.pack_into(data, head, b"REC1", length, zlib.crc32(bytes(data[body:body + length])))
    path.write_bytes(bytes(data))


def test_ivf_commits_log_each_vectors_list_and_a_replay_puts_it_there(
    ivf_store: tuple[FaissStore, np.ndarray], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A commit to an IVF index logs the list each new vector went to, and opening puts each vector in
    its logged list (no coarse quantizer: the list a replay is told is where the vector lands). List
    numbers that do not fit the index are never trusted: the store rebuilds from SQLite."""
    from vectorstore import faiss_log

    store, _ = ivf_store
    store.compact()
    add(store, clustered(300, seed=5), start=10_000)
    store.delete([3, 4, 10_001])
    written = _lists(store)
    log_file = tmp_path / "index.log"
    assert log_file.read_bytes().startswith(faiss_log.MAGIC)
    store.close()
    with caplog.at_level(logging.INFO, logger="vectorstore"):
        reopened = open_ivf(tmp_path)
    assert "rebuilding" not in caplog.text
    assert _lists(reopened) == written
    nlist = len(written)
    reopened.close()

    original = log_file.read_bytes()
    _forge_lists(log_file, lambda lists: (lists + 1) % nlist)  # every new vector one list further
    moved = open_ivf(tmp_path)
    new_ids = set(range(10_000, 10_300)) - {10_001}
    for i, ids in enumerate(_lists(moved)):
        assert {x for x in ids if x in new_ids} == {x for x in written[(i - 1) % nlist] if x in new_ids}
    moved.close()

    log_file.write_bytes(original)
    _forge_lists(log_file, lambda lists: lists + 10**6)  # past the index's lists
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="vectorstore"):
        rebuilt = open_ivf(tmp_path)
    assert "rebuilding" in caplog.text
    assert rebuilt.count() == 3000 + 300 - 3 and rebuilt.index_ntotal == rebuilt.count()
    rebuilt.close()


def test_a_version_1_log_is_replayed_and_never_appended_to(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """A log written before list numbers were logged (header version 1, plain adds) still opens without
    a rebuild; the next commit writes a snapshot and a version-2 log, so a version-1 reader never meets
    an op it does not know."""
    from vectorstore import faiss_log

    with monkeypatch.context() as old:
        old.setattr(faiss_log, "MAGIC", faiss_log.MAGIC_V1)
        old.setattr(fx, "ivf_lists", lambda *a: None)
        store = open_ivf(tmp_path)
        add(store, clustered(3000))
        store.compact()
        add(store, clustered(50, seed=9), start=20_000)
        store.close()
    assert (tmp_path / "index.log").read_bytes().startswith(faiss_log.MAGIC_V1)
    snapshot = (tmp_path / "index.faiss").read_bytes()
    with caplog.at_level(logging.INFO, logger="vectorstore"):
        store = open_ivf(tmp_path)
    assert "rebuilding" not in caplog.text and store.index_ntotal == 3050
    add(store, clustered(5, seed=11), start=30_000)
    store.close()
    assert (tmp_path / "index.log").read_bytes().startswith(faiss_log.MAGIC)
    assert (tmp_path / "index.faiss").read_bytes() != snapshot
    store = open_ivf(tmp_path)
    assert store.index_ntotal == 3055
    store.close()
