"""The segment build (``bm25_build``): its arrays equal a straightforward reference (every posting
listed, ordered by ``np.lexsort``) through merges with removals, re-adds and documents added out of id
order, with blocks of a few postings as well as the default; dtypes as the file format has them."""

from __future__ import annotations

import random

import numpy as np
import pytest

from kb_assistant.kb import bm25_build
from kb_assistant.kb.bm25_segment import ARRAYS, Builder, Segment, merge

Doc = tuple[list[tuple[str, int]], int]  # ([(term, tf)] sorted by term, length)


def reference(docs: dict[int, Doc]) -> dict[str, np.ndarray]:
    """The arrays of a segment holding ``docs``, built the obvious way."""
    ids = sorted(docs)
    vocab = sorted({t for terms, _ in docs.values() for t, _ in terms})
    tid = {t: i for i, t in enumerate(vocab)}
    rows = [(tid[t], p, tf) for p, rid in enumerate(ids) for t, tf in docs[rid][0]]
    term, pos, tf = (np.array([r[i] for r in rows], dtype=np.int64) for i in range(3))
    by_term = np.lexsort((pos, term))
    by_doc = np.lexsort((term, pos))
    doc_len = np.array([docs[rid][1] for rid in ids], dtype=np.int32)
    encoded = [t.encode("utf-8") for t in vocab]
    df = np.bincount(term, minlength=len(vocab))
    return {
        "vocab_blob": np.frombuffer(b"".join(encoded), dtype=np.uint8),
        "vocab_off": np.concatenate([[0], np.cumsum([len(e) for e in encoded], dtype=np.int64)]).astype(np.int64),
        "ptr": np.concatenate([[0], np.cumsum(df)]).astype(np.int64),
        "post_doc": pos[by_term].astype(np.int32),
        "post_tf": tf[by_term].astype(np.uint16 if not len(tf) or tf.max() < 2**16 else np.int64),
        "term_maxtf": np.array([tf[term == t].max() for t in range(len(vocab))], dtype=np.int64),
        "term_mindl": np.array([doc_len[pos[term == t]].min() for t in range(len(vocab))], dtype=np.int64),
        "doc_ids": np.array(ids, dtype=np.int64),
        "doc_len": doc_len,
        "fwd_ptr": np.concatenate([[0], np.cumsum(np.bincount(pos, minlength=len(ids)))]).astype(np.int64),
        "fwd_tid": term[by_doc].astype(np.int32),
    }


def _doc(rng: random.Random, big_tf: bool) -> Doc:
    words = [f"w{min(int(rng.paretovariate(0.7)), 80)}" for _ in range(rng.randint(0, 25))]
    words += rng.sample(["词", "検索", "é", "z"], rng.randint(0, 2))  # multi-byte terms: code-point order
    terms = sorted({w: words.count(w) for w in words}.items())
    if big_tf and terms and rng.random() < 0.05:
        terms[0] = (terms[0][0], 70_000)  # a tf past uint16: the postings' tf stored as int64
    return terms, len(words) + rng.randint(0, 3)


def _assert_equal(got: dict[str, np.ndarray], want: dict[str, np.ndarray], step: int) -> None:
    for key in ARRAYS:
        g, w = np.asarray(got[key]), want[key]
        assert g.dtype == w.dtype, (step, key, g.dtype, w.dtype)
        assert np.array_equal(g, w), (step, key)


@pytest.mark.parametrize(("block", "big_tf", "seed"), [(bm25_build.BLOCK, False, 1), (5, False, 2), (3, True, 3)])
def test_merges_equal_a_lexsort_reference(monkeypatch: pytest.MonkeyPatch, block: int, big_tf: bool, seed: int
                                          ) -> None:
    monkeypatch.setattr(bm25_build, "BLOCK", block)
    rng = random.Random(seed)
    segment, live, removed, wide = Segment.empty(), {}, [], set()  # type: ignore[var-annotated]
    _assert_equal(segment.a, reference({}), -1)
    for step in range(25):
        alive = np.ones(segment.n, bool)
        if live and step % 4 != 0:  # step 0, 4, ...: nothing removed (the segment's postings only renumbered)
            for rid in rng.sample(sorted(live), rng.randint(0, max(1, len(live) // 3))):
                del live[rid]
                removed.append(rid)
                alive[segment.positions([rid])[0]] = False
        adds = rng.sample(removed, min(len(removed), rng.randint(0, 4)))  # re-added, new texts
        removed = [r for r in removed if r not in adds]
        adds += [rng.randrange(10**12) for _ in range(rng.choice([0, 1, 5, 40]))]
        if step % 3 == 0:
            adds.sort()  # in id order (the transpose needs no reordering), else shuffled
        builder = Builder()
        for rid in dict.fromkeys(adds):
            live[rid] = _doc(rng, big_tf)
            builder.add(rid, *live[rid])
        segment = merge(segment, alive, builder)
        _assert_equal(segment.a, reference(live), step)
        wide.add(segment.a["post_tf"].dtype)
    assert segment.n > 50 and segment.vocab_size > 20
    assert (np.dtype(np.int64) in wide) == big_tf


def test_merge_refuses_an_id_that_is_still_alive() -> None:
    builder = Builder()
    builder.add(7, [("a", 1)], 1)
    segment = merge(Segment.empty(), np.zeros(0, bool), builder)
    again = Builder()
    again.add(7, [("b", 1)], 1)
    with pytest.raises(ValueError, match="both in the segment"):
        merge(segment, np.ones(1, bool), again)
