"""The SQLite side of ``FaissStore``: meta and records tables, the source of truth."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DimensionMismatchError, DuplicateIdError
from .types import Record
from .where import matches, sql_where

_CHUNK = 500  # ids per "IN (...)" query, well under SQLite's variable limit
_MAX_ID = 2**63 - 1
PAGE = 1000

Row = tuple[int, bytes, str]  # id, little-endian float32 bytes, JSON payload


def connect(path: Path) -> sqlite3.Connection:
    """A connection in explicit-transaction mode, WAL (readers never block the writer), fsync per commit."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def out_of_space(exc: BaseException) -> bool:
    """Whether SQLite failed for want of disk space (or an I/O error, as a size-capped file gives)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.OperationalError) and code is not None and code & 0xFF in (10, 13)  # IOERR, FULL


def dump_payload(payload: Mapping[str, Any], rid: int | None = None) -> str:
    """Payload as JSON text (UTF-8 kept readable); ValueError if it is not JSON-serialisable."""
    if not isinstance(payload, Mapping) or not all(isinstance(k, str) for k in payload):
        raise ValueError(f"record {rid}: payload must be a dict with string keys")
    try:
        return json.dumps(dict(payload), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"record {rid}: payload is not JSON-serialisable ({exc})") from None


def prepare_records(records: Sequence[Record], dim: int) -> tuple[list[Row], np.ndarray]:
    """Validate records before anything is touched; returns SQLite rows and the ``(n, dim)`` matrix."""
    rows: list[Row] = []
    vecs: list[np.ndarray] = []
    seen: set[int] = set()
    for rec in records:
        rid = rec.id
        if isinstance(rid, bool) or not isinstance(rid, int | np.integer) or not 0 <= rid <= _MAX_ID:
            raise ValueError(f"record ids must be integers in [0, 2**63); got {rid!r}")
        rid = int(rid)
        if rid in seen:
            raise DuplicateIdError(f"id {rid} appears twice in one add; ids must be unique")
        seen.add(rid)
        vec = np.asarray(rec.vector, dtype=np.float32)
        if vec.shape != (dim,):
            raise DimensionMismatchError(
                f"record {rid}: vector shape {vec.shape}, but this store holds ({dim},) vectors; "
                f"embed with the embedder the store was built with"
            )
        if not np.isfinite(vec).all():
            raise ValueError(f"record {rid}: vector contains NaN or infinity")
        rows.append((rid, vec.astype("<f4").tobytes(), dump_payload(rec.payload, rid)))
        vecs.append(vec)
    matrix = np.stack(vecs) if vecs else np.zeros((0, dim), np.float32)
    return rows, np.ascontiguousarray(matrix, dtype=np.float32)


def _chunks(items: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _in(items: Sequence[int]) -> str:
    return ",".join("?" * len(items))


class RecordTable:
    """Queries over ``meta`` and ``records``; transactions are the caller's business."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    # meta
    def meta_value(self, key: str) -> str | None:
        """One meta value, or None (also before the first migration created the table)."""
        try:
            row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError:
            return None
        return None if row is None else row[0]

    def meta(self) -> dict[str, str]:
        """All meta key/values."""
        return dict(self.conn.execute("SELECT key, value FROM meta").fetchall())

    def set_meta(self, items: Iterable[tuple[str, str]]) -> None:
        """Insert or overwrite meta keys."""
        self.conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", items)

    def generation(self) -> int:
        """The committed-write counter."""
        return int(self.meta_value("generation") or 0)

    # records
    def count(self, where: Mapping[str, Any] | None = None) -> int:
        """Rows matching ``where``."""
        expr, params, exact = sql_where(where)
        if not exact:
            return len(self.ids_matching(where))
        return int(self.conn.execute(f"SELECT COUNT(*) FROM records WHERE {expr}", params).fetchone()[0])

    def ids_matching(self, where: Mapping[str, Any] | None) -> list[int]:
        """Ids whose payload matches ``where`` (SQL where exact, confirmed in Python otherwise)."""
        expr, params, exact = sql_where(where)
        if exact:
            return [r[0] for r in self.conn.execute(f"SELECT id FROM records WHERE {expr}", params)]
        rows = self.conn.execute(f"SELECT id, payload FROM records WHERE {expr}", params)
        return [rid for rid, text in rows if matches(json.loads(text), where)]

    def delete(self, ids: Sequence[int], where: Mapping[str, Any] | None) -> list[int]:
        """Delete the existing ``ids`` and the rows matching ``where``; returns the ids removed."""
        doomed: set[int] = set()
        for part in _chunks(ids):
            sql = f"SELECT id FROM records WHERE id IN ({_in(part)})"
            doomed.update(r[0] for r in self.conn.execute(sql, part))
        if where is not None:
            doomed.update(self.ids_matching(where))
        self.conn.executemany("DELETE FROM records WHERE id = ?", [(i,) for i in doomed])
        return sorted(doomed)

    def insert(self, rows: list[Row]) -> None:
        """Insert new rows; ``DuplicateIdError`` names ids already stored."""
        try:
            self.conn.executemany("INSERT INTO records (id, vector, payload) VALUES (?, ?, ?)", rows)
        except sqlite3.IntegrityError:
            exists = "SELECT 1 FROM records WHERE id = ?"
            taken = [r[0] for r in rows if self.conn.execute(exists, (r[0],)).fetchone()]
            raise DuplicateIdError(
                f"ids already stored: {taken[:10]}; delete or replace_where them first"
            ) from None

    def update_payloads(self, updates: Mapping[int, Mapping[str, Any]]) -> int:
        """Overwrite payloads of existing ids; returns how many rows changed."""
        sql = "UPDATE records SET payload = ? WHERE id = ?"
        return sum(self.conn.execute(sql, (dump_payload(p, i), int(i))).rowcount for i, p in updates.items())

    def raw_payloads(self, ids: Sequence[int]) -> dict[int, str]:
        """JSON payload text by id for the stored ones among ``ids``."""
        out: dict[int, str] = {}
        for part in _chunks(ids):
            out.update(self.conn.execute(f"SELECT id, payload FROM records WHERE id IN ({_in(part)})", part))
        return out

    def get(self, ids: Sequence[int]) -> dict[int, Record]:
        """Stored records among ``ids``, by id."""
        found: dict[int, Record] = {}
        for part in _chunks(ids):
            sql = f"SELECT id, vector, payload FROM records WHERE id IN ({_in(part)})"
            for rid, blob, payload in self.conn.execute(sql, part):
                vector = np.frombuffer(blob, dtype="<f4").astype(np.float32)
                found[rid] = Record(rid, vector, json.loads(payload))
        return found

    def payload_page(
        self, where: Mapping[str, Any] | None, after: int
    ) -> tuple[list[tuple[int, dict[str, Any]]], int | None]:
        """Up to ``PAGE`` rows with id > ``after`` (keyset paging), filtered; and the next ``after``."""
        expr, params, exact = sql_where(where)
        sql = f"SELECT id, payload FROM records WHERE id > ? AND {expr} ORDER BY id LIMIT {PAGE}"
        page = self.conn.execute(sql, [after, *params]).fetchall()
        out = [(rid, json.loads(text)) for rid, text in page]
        if not exact:
            out = [(rid, p) for rid, p in out if matches(p, where)]
        return out, (page[-1][0] if len(page) == PAGE else None)

    def all_vectors(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """Every id and vector, for rebuilding the index (caller holds a read transaction)."""
        count = self.count()
        ids = np.empty(count, dtype=np.int64)
        matrix = np.empty((count, dim), dtype=np.float32)
        for row, (rid, blob) in enumerate(self.conn.execute("SELECT id, vector FROM records")):
            ids[row] = rid
            matrix[row] = np.frombuffer(blob, dtype="<f4")
        return ids, matrix
