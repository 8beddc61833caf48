"""The SQLite side of the BM25 index: documents added since the segment was written (``docs``,
``postings``), segment documents removed since (``dead``), and each term's change to the segment's
document frequency (``terms``). Small by design (``bm25.DELTA_MAX``), so read row by row."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .bm25_schema import BM25IndexError
from .bm25_segment import Builder, Segment, SegmentError, drop_folder

if TYPE_CHECKING:
    from .bm25 import BM25Index

_BATCH = 500  # documents per executemany, and ids per "IN (...)", well under SQLite's variable limit
Doc = tuple[int, list[tuple[str, int]], int]  # id, (term, tf) pairs, length


def batches(items: Iterable, size: int = _BATCH) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def insert(conn: sqlite3.Connection, batch: Sequence[Doc]) -> None:
    """Add documents not indexed anywhere (the caller removed their ids first)."""
    conn.executemany("INSERT INTO docs (id, length) VALUES (?, ?)", [(r, n) for r, _, n in batch])
    postings = sorted((term, rid, tf, n) for rid, tfs, n in batch for term, tf in tfs)
    conn.executemany("INSERT INTO postings (term, id, tf, length) VALUES (?, ?, ?, ?)", postings)
    conn.executemany(
        "INSERT INTO terms (term, df) VALUES (?, ?) ON CONFLICT (term) DO UPDATE SET df = df + excluded.df",
        sorted(Counter(term for term, *_ in postings).items()),
    )
    total = sum(n for _, _, n in batch)
    conn.execute("UPDATE stats SET n = n + ?, total_length = total_length + ?", (len(batch), total))


def remove(conn: sqlite3.Connection, segment: Segment, alive: np.ndarray, ids: Sequence[int]) -> int:
    """Drop ids from the delta, and mark the segment's live copies dead (``alive`` updated in place;
    their terms leave ``terms.df``, read from the segment's forward index). Returns how many."""
    removed = 0
    for start in range(0, len(ids), _BATCH):
        part = list(ids[start : start + _BATCH])
        marks = ",".join("?" * len(part))
        n, total = conn.execute(
            f"SELECT COUNT(*), COALESCE(SUM(length), 0) FROM docs WHERE id IN ({marks})", part
        ).fetchone()
        gone = dict(conn.execute(
            f"SELECT term, COUNT(*) FROM postings WHERE id IN ({marks}) GROUP BY term", part
        ).fetchall()) if n else {}
        pos = segment.positions(part) if segment.n else np.zeros(0, np.int64)
        dead = sorted({int(p) for p in pos if p >= 0 and alive[p]})
        if dead:
            for tid, count in Counter(int(t) for p in dead for t in segment.doc_terms(p)).items():
                term = segment.term(tid)
                gone[term] = gone.get(term, 0) + count
            alive[dead] = False
            conn.executemany("INSERT INTO dead (id) VALUES (?)", [(int(segment.a["doc_ids"][p]),) for p in dead])
            n += len(dead)
            total += int(np.asarray(segment.a["doc_len"])[dead].sum())
        if not n:
            continue
        conn.executemany(
            "INSERT INTO terms (term, df) VALUES (?, ?) ON CONFLICT (term) DO UPDATE SET df = df + excluded.df",
            sorted((t, -c) for t, c in gone.items()))
        conn.executemany("DELETE FROM terms WHERE term = ? AND df = 0", [(t,) for t in gone])
        conn.execute(f"DELETE FROM postings WHERE id IN ({marks})", part)
        conn.execute(f"DELETE FROM docs WHERE id IN ({marks})", part)
        conn.execute("UPDATE stats SET n = n - ?, total_length = total_length - ?", (n, total))
        removed += n
    return removed


def read_into(conn: sqlite3.Connection, builder: Builder) -> None:
    """Every delta document into ``builder`` (for a merge)."""
    rows: dict[int, list[tuple[str, int]]] = {}
    for rid, term, tf in conn.execute("SELECT id, term, tf FROM postings ORDER BY id, term"):
        rows.setdefault(rid, []).append((term, tf))
    for rid, length in conn.execute("SELECT id, length FROM docs"):
        builder.add(rid, rows.get(rid, []), length)


def clear(conn: sqlite3.Connection) -> None:
    for table in ("postings", "docs", "terms", "dead"):
        conn.execute(f"DELETE FROM {table}")


def top(conn: sqlite3.Connection, weights: list[tuple[str, float]], k: int, *, kp1: float, c: float,
        norm: float) -> list[tuple[int, float]]:
    """The delta's ``k`` best (id, score) for ``weights`` = ``[(term, idf)]`` in sorted term order: the
    SQL the index used before segments (a delta-only index queries exactly as it did). SQLite walks
    ``q`` outermost, so each document's shares are summed in the terms' order, as the segment's are
    (``bm25_segment.top_k``), in the same double arithmetic: equal documents score bit for bit equal."""
    if not weights:
        return []
    values = ",".join("(?, ?)" for _ in weights)
    params: list[object] = [x for pair in weights for x in pair]
    sql = (
        f"WITH q(term, w) AS (VALUES {values}) "
        "SELECT p.id, SUM(q.w * p.tf * ? / (p.tf + ? + ? * p.length)) AS score "
        "FROM q JOIN postings AS p ON p.term = q.term "
        "GROUP BY p.id ORDER BY score DESC, p.id LIMIT ?"
    )
    params += [kp1, c, norm, k]
    return [(int(rid), float(score)) for rid, score in conn.execute(sql, params)]


def terms_of(conn: sqlite3.Connection, wanted: list[int], only: list[str] | None, out: dict[int, set[str]]) -> None:
    """``BM25Index.terms_of`` for the delta's documents, into ``out``."""
    for start in range(0, len(wanted), _BATCH):
        part = wanted[start : start + _BATCH]
        marks = ",".join("?" * len(part))
        if only is None:
            rows = conn.execute(f"SELECT id, term FROM postings WHERE id IN ({marks})", part)
        else:
            out.update((rid, set()) for (rid,) in conn.execute(
                f"SELECT id FROM docs WHERE id IN ({marks})", part))
            rows = conn.execute(
                f"SELECT id, term FROM postings WHERE term IN ({','.join('?' * len(only))}) "
                f"AND id IN ({marks})", [*only, *part])
        for rid, term in rows:
            out.setdefault(int(rid), set()).add(term)


class Transaction:
    """``BEGIN`` (a read snapshot) or ``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on any
    exception, under the index's lock; the segment the file names is loaded on entry. A merge's old
    folder is deleted once its commit is durable; a failed one's new folder at once."""

    def __init__(self, index: BM25Index, begin: str, *, refresh: bool = True) -> None:
        self._index = index
        self._begin = begin
        self._refresh = refresh

    def __enter__(self) -> None:
        index = self._index
        index._lock.acquire()
        try:
            for attempt in range(3):
                index._conn.execute(self._begin)
                try:
                    if self._refresh:
                        index._refresh()
                    break
                except SegmentError as exc:
                    index._conn.execute("ROLLBACK")
                    if attempt == 2:  # not a merge by another process that replaced it meanwhile
                        raise BM25IndexError(f"keyword index {index.path}: its segment cannot be read ({exc}); "
                                             "reopen it to rebuild it from the store") from exc
            self._before = index._segment
        except BaseException:
            index._lock.release()
            raise

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        index = self._index
        conn = index._conn
        try:
            if exc_type is None:
                conn.execute("COMMIT")
                old = self._before.name
                if index._segment.name != old and old and index._on_disk:
                    drop_folder(index.path.parent / old)
            else:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                new = index._segment.name
                if new != self._before.name and new and index._on_disk:
                    drop_folder(index.path.parent / new)
                index._segment, index._alive_at = self._before, None
        finally:
            index._lock.release()
