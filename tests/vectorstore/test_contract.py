"""Behaviour every ``VectorStore`` backend must share (parametrized over ``store_factory``)."""

from __future__ import annotations

import numpy as np
import pytest

from vectorstore import DimensionMismatchError, DuplicateIdError, Record, VectorStoreError

from .conftest import DIM, StoreFactory, unit_vectors


def records(n: int, *, start: int = 0, seed: int = 0, source: str = "a.md") -> list[Record]:
    vecs = unit_vectors(n, seed=seed)
    return [Record(start + i, vecs[i], {"source": source, "i": start + i}) for i in range(n)]


def test_top_hit_for_stored_vector_is_itself(store_factory: StoreFactory) -> None:
    store = store_factory()
    recs = records(50)
    store.add(recs)
    for rec in recs[:10]:
        hits = store.search(rec.vector, 5)
        assert hits[0].id == rec.id
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert hits[0].payload == rec.payload
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_scores_are_inner_products(store_factory: StoreFactory) -> None:
    store = store_factory()
    recs = records(20)
    store.add(recs)
    query = unit_vectors(1, seed=99)[0]
    expected = sorted(((float(r.vector @ query), r.id) for r in recs), reverse=True)[:5]
    hits = store.search(query, 5)
    assert [h.id for h in hits] == [i for _, i in expected]
    assert [h.score for h in hits] == pytest.approx([s for s, _ in expected], abs=1e-5)


def test_search_many_matches_search(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.add(records(30))
    queries = unit_vectors(4, seed=7)
    batched = store.search_many(queries, 3)
    assert [[h.id for h in hits] for hits in batched] == [[h.id for h in store.search(q, 3)] for q in queries]


def test_empty_store_and_k_larger_than_count(store_factory: StoreFactory) -> None:
    store = store_factory()
    query = unit_vectors(1)[0]
    assert store.search(query, 5) == []
    assert store.search(query, 5, where={"source": "a.md"}) == []
    assert store.count() == 0
    store.add(records(3))
    assert len(store.search(query, 100)) == 3
    assert store.search(query, 0) == []


def test_delete_really_removes(store_factory: StoreFactory) -> None:
    store = store_factory()
    recs = records(10)
    store.add(recs)
    assert store.delete([recs[0].id, recs[1].id, 12345]) == 2
    assert store.count() == 8
    assert store.get([recs[0].id]) == [None]
    hits = store.search(recs[0].vector, 10)
    assert recs[0].id not in {h.id for h in hits}
    assert len(hits) == 8
    assert store.delete([recs[0].id]) == 0


def test_delete_where_and_where_search(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.add(records(5, source="a.md") + records(5, start=100, seed=1, source="b.md"))
    assert store.count({"source": "b.md"}) == 5
    hits = store.search(unit_vectors(1, seed=3)[0], 10, where={"source": "b.md"})
    assert len(hits) == 5 and all(h.payload["source"] == "b.md" for h in hits)
    assert store.delete_where({"source": "a.md"}) == 5
    assert store.count() == 5
    assert store.delete_where({"source": "nope"}) == 0
    with pytest.raises(ValueError):
        store.delete_where({})


def test_where_on_non_string_values(store_factory: StoreFactory) -> None:
    store = store_factory()
    vecs = unit_vectors(4)
    payloads = [
        {"page": 1, "ok": True, "tag": None},
        {"page": 2, "ok": False},
        {"page": 1.0, "tags": ["x"]},
        {"weird key": "v"},
    ]
    store.add([Record(i, vecs[i], p) for i, p in enumerate(payloads)])
    assert store.ids({"page": 1}) == [0, 2]
    assert store.ids({"ok": False}) == [1]
    assert store.ids({"tag": None}) == [0]
    assert store.ids({"tags": ["x"]}) == [2]
    assert store.ids({"weird key": "v"}) == [3]
    assert store.count({"page": 1, "ok": True}) == 1
    assert [h.id for h in store.search(vecs[0], 5, where={"tags": ["x"]})] == [2]


def test_replace_where_swaps_and_may_reuse_ids(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.add(records(5, source="a.md") + records(3, start=10, seed=1, source="b.md"))
    new = records(2, seed=5, source="a.md")  # ids 0 and 1 reused
    assert store.replace_where({"source": "a.md"}, new) == (5, 2)
    assert store.count({"source": "a.md"}) == 2
    assert store.count() == 5
    assert store.search(new[1].vector, 1)[0].id == 1
    np.testing.assert_allclose(store.vectors([1]), new[1].vector[None, :], atol=1e-7)


def test_failed_batch_changes_nothing(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.add(records(5))
    gen_before = store.get_meta()["generation"]
    with pytest.raises(RuntimeError, match="boom"):
        with store.batch():
            store.replace_where({"source": "a.md"}, records(2, start=50, seed=2))
            store.add(records(3, start=60, seed=3))
            assert store.count() == 5  # the batch sees its own writes
            raise RuntimeError("boom")
    assert store.count() == 5
    assert store.search(records(5)[2].vector, 1)[0].id == 2
    store.close()
    store = store_factory()
    assert store.count() == 5
    assert store.get_meta()["generation"] == gen_before
    assert sorted(h.id for h in store.search(unit_vectors(1, seed=8)[0], 100)) == [0, 1, 2, 3, 4]


def test_caught_error_inside_batch_keeps_store_consistent(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.add(records(3))
    with store.batch():
        with pytest.raises(DuplicateIdError):
            store.add(records(2, start=10, seed=1) + records(1))  # 10, 11 then duplicate 0
        store.add(records(1, start=20, seed=2))
    assert store.ids() == [0, 1, 2, 20]
    assert len(store.search(unit_vectors(1)[0], 100)) == 4


def test_persistence_round_trip(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.add(records(40))
    store.set_meta(embedder="bge-small-zh", splitter="chars:500/50")
    query = unit_vectors(1, seed=42)[0]
    before = store.search(query, 7)
    store.close()
    again = store_factory(dim=None)
    assert again.dim == DIM
    assert again.search(query, 7) == before
    meta = again.get_meta()
    assert meta["embedder"] == "bge-small-zh" and meta["splitter"] == "chars:500/50"
    assert meta["dim"] == str(DIM)


def test_dimension_errors(store_factory: StoreFactory) -> None:
    store = store_factory()
    with pytest.raises(DimensionMismatchError, match="shape"):
        store.add([Record(1, np.ones(DIM + 1, np.float32), {})])
    with pytest.raises(ValueError):  # DimensionMismatchError is also a ValueError
        store.search(np.ones(DIM - 1, np.float32), 3)
    store.close()
    with pytest.raises(DimensionMismatchError, match="rebuild"):
        store_factory(dim=DIM * 2)
    with pytest.raises(VectorStoreError, match="dim is required"):
        store_factory("fresh", dim=None)


def test_duplicate_and_invalid_ids(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.add(records(3))
    with pytest.raises(DuplicateIdError, match="already stored"):
        store.add(records(1, start=2))
    with pytest.raises(DuplicateIdError, match="twice"):
        store.add(records(1, start=7) + records(1, start=7))
    with pytest.raises(ValueError):
        store.add([Record(-1, unit_vectors(1)[0], {})])
    with pytest.raises(ValueError, match="NaN"):
        store.add([Record(9, np.full(DIM, np.nan, np.float32), {})])
    assert store.count() == 3


def test_awkward_payloads_round_trip(store_factory: StoreFactory) -> None:
    store = store_factory()
    payloads = [
        {"source": "笔记/机器学习.md", "text": "混合 Chinese 和 English 🚀🎉", "heading": ""},
        {"source": "emoji-😀.txt", "text": "", "nested": {"列表": [1, 2.5, None, True]}},
        {},
    ]
    vecs = unit_vectors(3)
    store.add([Record(i, vecs[i], p) for i, p in enumerate(payloads)])
    store.close()
    store = store_factory()
    assert [r.payload for r in store.get([0, 1, 2]) if r] == payloads
    assert store.ids({"source": "笔记/机器学习.md"}) == [0]
    assert store.search(vecs[1], 1)[0].payload == payloads[1]


def test_update_payloads_keeps_vectors(store_factory: StoreFactory) -> None:
    store = store_factory()
    recs = records(4)
    store.add(recs)
    assert store.update_payloads({1: {"source": "renamed.md"}, 99: {"x": 1}}) == 1
    assert store.ids({"source": "renamed.md"}) == [1]
    hit = store.search(recs[1].vector, 1)[0]
    assert hit.id == 1 and hit.payload == {"source": "renamed.md"}
    np.testing.assert_array_equal(store.vectors([1])[0], recs[1].vector)


def test_payload_iteration_and_vectors(store_factory: StoreFactory) -> None:
    store = store_factory()
    recs = records(1500, seed=4)  # more than one page
    with store.batch():
        store.add(recs[:700])
        store.add(recs[700:])
    got = list(store.payloads())
    assert [i for i, _ in got] == list(range(1500))
    assert got[3][1] == recs[3].payload
    assert [i for i, _ in store.payloads({"i": 1234})] == [1234]
    np.testing.assert_array_equal(store.vectors([5, 2]), np.stack([recs[5].vector, recs[2].vector]))
    with pytest.raises(KeyError):
        store.vectors([5, 10**6])
    assert store.vectors([]).shape == (0, DIM)


def test_meta_rules(store_factory: StoreFactory) -> None:
    store = store_factory()
    with pytest.raises(ValueError):
        store.set_meta(dim="3")
    with pytest.raises(ValueError):
        store.set_meta(embedder=3)  # type: ignore[arg-type]
    before = int(store.get_meta()["generation"])
    store.add(records(1))
    assert int(store.get_meta()["generation"]) == before + 1


def test_context_manager_closes(store_factory: StoreFactory) -> None:
    with store_factory() as store:
        store.add(records(1))
    with pytest.raises(VectorStoreError, match="closed"):
        store.count()
