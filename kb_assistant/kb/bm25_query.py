"""The BM25 index's read side: Okapi scores, document frequencies and chunk terms, the segment and the
delta answering as one index.

Apart from ``bm25.py``, which owns the file (opening, transactions, the segment's lifecycle, every
write), because a query needs only a snapshot: the connection inside the caller's read transaction,
the segment, and which of its documents are alive.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence

import numpy as np

from . import bm25_delta as delta
from .bm25_segment import Segment, postings_among, top_k


def search(conn: sqlite3.Connection, seg: Segment, alive: np.ndarray, terms: list[str], k: int, *, k1: float,
           b: float) -> list[tuple[int, float]]:
    """``BM25Index.search`` for the distinct, sorted query ``terms``: the segment's best and the delta's
    best merged, best first (ties by ascending id)."""
    n, total = conn.execute("SELECT n, total_length FROM stats").fetchone()
    if not n or not total:
        return []
    _, dfs = doc_freqs(conn, seg, terms)
    weights = {t: math.log(1.0 + (n - df + 0.5) / (df + 0.5)) for t, df in dfs.items() if df > 0}
    shape = {"kp1": k1 + 1.0, "c": k1 * (1.0 - b), "norm": k1 * b / (total / n)}
    hits = [(int(seg.a["doc_ids"][p]), s) for p, s in top_k(
        seg, alive, [(seg.term_id(t), weights[t]) for t in terms if t in weights], int(k), **shape)]
    hits += delta.top(conn, sorted(weights.items()), int(k), **shape)
    return sorted(hits, key=lambda h: (-h[1], h[0]))[:k]


def doc_freqs(conn: sqlite3.Connection, seg: Segment, unique: list[str]) -> tuple[int, dict[str, int]]:
    """``(chunks in the index, {term: chunks containing it})`` for distinct, sorted ``unique`` terms: the
    segment's counts plus the delta's change to them."""
    (n,) = conn.execute("SELECT n FROM stats").fetchone()
    if not unique:
        return int(n), {}
    marks = ",".join("?" * len(unique))
    change = dict(conn.execute(f"SELECT term, df FROM terms WHERE term IN ({marks})", unique).fetchall())
    return int(n), {t: seg.df(seg.term_id(t)) + int(change.get(t, 0)) for t in unique}


def terms_of(conn: sqlite3.Connection, seg: Segment, alive: np.ndarray, wanted: list[int],
             within: Sequence[str] | None) -> dict[int, set[str]]:
    """``BM25Index.terms_of`` for the checked chunk ids ``wanted``: the segment's live documents from its
    forward index (or, ``within`` some terms, from those terms' postings), then the delta's."""
    out: dict[int, set[str]] = {}
    only = sorted(set(within)) if within is not None else None
    pos = seg.positions(wanted) if seg.n and wanted else np.zeros(0, np.int64)
    live = [(rid, int(p)) for rid, p in zip(wanted, pos.tolist()) if p >= 0 and alive[p]]
    if only is None:
        for rid, p in live:  # as the delta's rows: a chunk without terms is not listed
            if found := {seg.term(int(t)) for t in seg.doc_terms(p)}:
                out[rid] = found
    else:
        out.update((rid, set()) for rid, _ in live)
        rid_at = {p: rid for rid, p in live}
        cand = np.array(list(rid_at), dtype=seg.a["post_doc"].dtype)
        for term in only:
            tid = seg.term_id(term)
            if tid < 0 or not len(cand):
                continue
            for p in postings_among(seg, tid, cand)[0].tolist():
                out[rid_at[p]].add(term)
    delta.terms_of(conn, wanted, only, out)
    return out
