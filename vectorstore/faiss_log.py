"""The FAISS cache's append-only change log (``index.log``): a commit costs its own change, not the index.

``index.faiss`` is a snapshot at some generation; ``index.log`` holds, per later commit, the ids it
deleted and the vectors it added, and is replayed onto the snapshot on load. Each record carries the
generation it starts from and the one it reaches, its length and a CRC32, so a record torn by a crash
ends the replay there (the store then rebuilds from SQLite, the truth). The log's header names the
snapshot it extends (a random token also written in the snapshot's sidecar): a log left over from an
older snapshot is never replayed onto a newer one.

Version 2 adds the op ``P``: vectors added to an IVF index with the list each went to (the snapshot's
centroids, which a log never outlives: a retrain writes a new snapshot), so a replay skips the coarse
quantizer. Version-1 logs are still replayed; a commit never appends to one (it writes a snapshot and
a version-2 log), so an older kb-assistant never meets a ``P`` op: it sees another header and rebuilds.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .faiss_index import add_vectors
from .fsutil import atomic_write

LOG_FILE = "index.log"
MAGIC = b"KBFAISSLOG2 "
MAGIC_V1 = b"KBFAISSLOG1 "  # replayed, never appended to
TOKEN_LEN = 32  # hex characters
HEADER_LEN = len(MAGIC) + TOKEN_LEN + 1
_RECORD = struct.Struct("<4sQI")  # b"REC1", payload length, CRC32 of the payload
_BODY = struct.Struct("<qqII")  # base generation, generation, dim, number of ops
_OP = struct.Struct("<cQ")  # b"D" (delete ids), b"A" (add ids + vectors) or b"P" (ids + IVF lists + vectors), count

# An op is ("D", ids), ("A", ids, vectors) or ("P", ids, vectors, lists): the changes of one commit, in
# the order applied.
Op = tuple[Any, ...]


@dataclass
class LogPosition:
    """Where the next record goes: the log's token and the end of its last valid record."""

    token: str
    end: int


def new_token() -> str:
    """A fresh token binding one snapshot to its log."""
    return os.urandom(TOKEN_LEN // 2).hex()


def reset(directory: Path, token: str) -> LogPosition:
    """Replace the log with an empty one extending the snapshot marked ``token`` (atomically)."""
    atomic_write(directory / LOG_FILE, _header(token))
    return LogPosition(token, HEADER_LEN)


def _header(token: str, magic: bytes | None = None) -> bytes:
    return (magic or MAGIC) + token.encode("ascii") + b"\n"


def _readable(header: bytes, token: str) -> bool:
    return header in (_header(token), _header(token, MAGIC_V1))


def encode(base: int, generation: int, dim: int, ops: Sequence[Op]) -> bytes:
    """One record: the commit from ``base`` to ``generation`` as its deletions and additions."""
    parts = [_BODY.pack(base, generation, dim, len(ops))]
    for op in ops:
        ids = np.ascontiguousarray(op[1], dtype="<i8")
        parts.append(_OP.pack(op[0].encode("ascii"), len(ids)))
        parts.append(ids.tobytes())
        if op[0] == "P":
            parts.append(np.ascontiguousarray(op[3], dtype="<i8").tobytes())
        if op[0] in ("A", "P"):
            parts.append(np.ascontiguousarray(op[2], dtype="<f4").tobytes())
    body = b"".join(parts)
    return _RECORD.pack(b"REC1", len(body), zlib.crc32(body)) + body


def append(directory: Path, position: LogPosition, record: bytes) -> bool:
    """Write ``record`` at ``position.end`` (cutting any torn tail there) and fsync; advances ``position``.

    False, writing nothing, if the log on disk is not the one ``position`` describes (another process
    wrote a new snapshot): the caller then writes a snapshot itself. OSError (e.g. disk full) propagates;
    whatever part of the record reached the disk fails its CRC and is ignored on load.
    """
    try:
        fh = open(directory / LOG_FILE, "r+b")
    except FileNotFoundError:
        return False
    with fh:
        if fh.read(HEADER_LEN) != _header(position.token) or os.fstat(fh.fileno()).st_size < position.end:
            return False
        fh.seek(position.end)
        fh.write(record)
        fh.truncate()
        fh.flush()
        os.fsync(fh.fileno())
    position.end += len(record)
    return True


def replay(directory: Path, token: str, index: Any, start: int, target: int, dim: int) -> LogPosition | None:
    """Apply the log's records from generation ``start`` up to ``target`` onto ``index``.

    Returns the position after the record reaching ``target`` (where the next commit appends), or None
    if the log is missing, belongs to another snapshot, or its chain breaks or ends (a torn record, a
    commit whose record was never written) before ``target``: the caller rebuilds. Records at or
    below ``start`` are skipped; ``index`` may be partly modified when None is returned.
    """
    try:
        fh = open(directory / LOG_FILE, "rb")
    except FileNotFoundError:
        return None
    with fh:
        if not _readable(fh.read(HEADER_LEN), token):
            return None
        current, end = start, HEADER_LEN
        while current != target:
            head = fh.read(_RECORD.size)
            if len(head) < _RECORD.size:
                return None
            magic, length, crc = _RECORD.unpack(head)
            if magic != b"REC1":
                return None
            body = fh.read(length)
            if len(body) < length or zlib.crc32(body) != crc:
                return None
            end += _RECORD.size + length
            base, generation, rec_dim, _ = _BODY.unpack_from(body)
            if generation <= current:
                continue
            if base != current or rec_dim != dim or generation > target:
                return None
            try:
                _apply(index, body, dim)
            except ValueError:  # list numbers from other centroids: only a rebuild can be trusted
                return None
            current = generation
        return LogPosition(token, end)


def touched(directory: Path, token: str, start: int, target: int) -> set[int] | None:
    """The ids deleted or added by the commits after generation ``start`` up to ``target``, or None when
    the log does not hold them all (it extends a later snapshot, or a record is torn or missing): the
    caller then compares every id. Records up to ``start`` are stepped over by their lengths and
    vectors are never read, so the cost is that of the change, not of the log."""
    try:
        fh = open(directory / LOG_FILE, "rb")
    except FileNotFoundError:
        return None
    ids: set[int] = set()
    with fh:
        if not _readable(fh.read(HEADER_LEN), token):
            return None
        current = start
        while current != target:
            head = fh.read(_RECORD.size + _BODY.size)
            if len(head) < _RECORD.size + _BODY.size:
                return None
            magic, length, crc = _RECORD.unpack_from(head)
            base, generation, dim, _ = _BODY.unpack_from(head, _RECORD.size)
            if magic != b"REC1" or length < _BODY.size:
                return None
            if generation <= current:
                fh.seek(length - _BODY.size, os.SEEK_CUR)
                continue
            body = head[_RECORD.size :] + fh.read(length - _BODY.size)
            if base != current or generation > target or len(body) < length or zlib.crc32(body) != crc:
                return None
            ids.update(_ids(body, dim))
            current = generation
    return ids


def _ids(body: bytes, dim: int) -> list[int]:
    """The ids one record's ops delete or add (vectors skipped)."""
    _, _, _, n_ops = _BODY.unpack_from(body)
    offset, out = _BODY.size, []
    for _ in range(n_ops):
        kind, count = _OP.unpack_from(body, offset)
        offset += _OP.size
        out.extend(np.frombuffer(body, dtype="<i8", count=count, offset=offset).tolist())
        offset += 8 * count + (8 * count if kind == b"P" else 0) + (4 * count * dim if kind in (b"A", b"P") else 0)
    return out


def _apply(index: Any, body: bytes, dim: int) -> None:
    """Replay one record's ops onto ``index`` in order (ValueError: list numbers that do not fit it)."""
    _, _, _, n_ops = _BODY.unpack_from(body)
    offset = _BODY.size
    view = memoryview(body)
    for _ in range(n_ops):
        kind, count = _OP.unpack_from(body, offset)
        offset += _OP.size
        ids = np.frombuffer(view[offset : offset + 8 * count], dtype="<i8").astype(np.int64)
        offset += 8 * count
        if kind == b"D":
            index.remove_ids(ids)
            continue
        lists = None
        if kind == b"P":
            lists = np.frombuffer(view[offset : offset + 8 * count], dtype="<i8").astype(np.int64)
            offset += 8 * count
        size = 4 * count * dim
        vectors = np.frombuffer(view[offset : offset + size], dtype="<f4").reshape(count, dim)
        offset += size
        add_vectors(index, np.ascontiguousarray(vectors, dtype=np.float32), ids, lists)
