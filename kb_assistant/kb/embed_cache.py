"""Embedding cache: (embedder id, sha256 of chunk text) -> float32 vector, in the knowledge base's SQLite file."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from vectorstore.migrations import apply_migrations

from ..errors import KBError

log = logging.getLogger(__name__)

CACHE_FILE = "embed_cache.sqlite"
_BATCH = 500  # keys per "IN (...)", well under SQLite's variable limit
Migration = Callable[[sqlite3.Connection], None]


def m001_initial(db: sqlite3.Connection) -> None:
    """One row per (embedder, text hash); vectors as raw little-endian float32 (no pickle)."""
    db.execute(
        "CREATE TABLE embeddings (embedder TEXT NOT NULL, text_sha256 BLOB NOT NULL, dim INTEGER NOT NULL, "
        "vector BLOB NOT NULL, PRIMARY KEY (embedder, text_sha256)) WITHOUT ROWID"
    )


# Append only: never edit or reorder a migration that has shipped.
MIGRATIONS: list[Migration] = [m001_initial]


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbedCache:
    """Vectors already computed for a chunk text, so re-indexing, moves and rebuilds skip the model.

    A cache only: every write is one SQLite transaction (a crash loses at most the last one), and a
    file that cannot be read is set aside and started afresh rather than failing the run.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._write_failed = False  # warned once that writes fail (e.g. a full disk)

    @classmethod
    def open(cls, path: Path) -> EmbedCache:
        try:
            return cls(_connect(path), path)
        except sqlite3.DatabaseError as exc:
            log.warning("embedding cache %s is unreadable (%s); starting a new one", path, exc)
            path.replace(path.with_suffix(".corrupt"))
            for suffix in ("-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            return cls(_connect(path), path)

    def get_many(self, embedder_id: str, keys: Sequence[bytes], dim: int) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _BATCH):
            part = unique[start : start + _BATCH]
            rows = self.conn.execute(
                f"SELECT text_sha256, vector FROM embeddings WHERE embedder = ? AND dim = ? "
                f"AND text_sha256 IN ({','.join('?' * len(part))})",
                [embedder_id, dim, *part],
            )
            for key, blob in rows:
                found[bytes(key)] = np.frombuffer(blob, dtype="<f4")
        return found

    def put_many(self, embedder_id: str, items: Sequence[tuple[bytes, np.ndarray]]) -> None:
        rows = [
            (embedder_id, key, int(v.shape[0]), np.asarray(v, dtype="<f4").tobytes()) for key, v in items
        ]
        try:
            with self.conn:
                self.conn.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)", rows)
        except sqlite3.OperationalError as exc:
            # A cache only: a full disk (or a busy file) costs re-embedding later, never the run. The
            # store's own write fails clearly if the disk is really full.
            if not self._write_failed:
                log.warning("could not add to the embedding cache %s: %s", self.path, exc)
            self._write_failed = True

    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM embeddings").fetchone()[0])

    def prune(self, embedder_id: str, keep: Iterable[bytes]) -> int:
        """Delete every vector but those of ``embedder_id`` for the text keys in ``keep``; returns how many.

        The cache grows with every edit (each old chunk text stays), so after large removals or many
        edits most of it can be texts no document holds any more.
        """
        with self.conn:
            self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS keep (k BLOB PRIMARY KEY) WITHOUT ROWID")
            self.conn.execute("DELETE FROM temp.keep")
            self.conn.executemany("INSERT OR IGNORE INTO temp.keep VALUES (?)", ((k,) for k in keep))
            removed = self.conn.execute(
                "DELETE FROM embeddings WHERE embedder != ? OR text_sha256 NOT IN (SELECT k FROM temp.keep)",
                (embedder_id,),
            ).rowcount
            self.conn.execute("DELETE FROM temp.keep")
        return int(removed)

    def vacuum(self) -> None:
        """Give the space of deleted rows back to the file system (rewrites the file)."""
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.execute("VACUUM")

    def size_bytes(self) -> int:
        """The cache's size on disk, its write-ahead log included."""
        return sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())

    def close(self) -> None:
        self.conn.close()


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=10000")
        apply_migrations(conn, MIGRATIONS, lambda version: KBError(
            f"embedding cache {path} has schema version {version}, newer than this kb-assistant "
            f"({len(MIGRATIONS)}); upgrade kb-assistant or delete the file"
        ))
        conn.isolation_level = "DEFERRED"  # `with conn:` blocks are transactions from here on
    except BaseException:
        conn.close()
        raise
    return conn


def embed_with_cache(
    texts: Sequence[str], embed: Callable[[list[str]], np.ndarray], embedder_id: str, dim: int,
    cache: EmbedCache | None, *, batch_size: int,
) -> tuple[np.ndarray, int]:
    """Vectors for ``texts`` (shape ``(n, dim)``), computing only those not cached; ``(vectors, computed)``."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    keys = [text_key(t) for t in texts]
    known = cache.get_many(embedder_id, keys, dim) if cache is not None else {}
    todo: dict[bytes, list[int]] = {}
    for row, key in enumerate(keys):
        if key in known:
            out[row] = known[key]
        else:
            todo.setdefault(key, []).append(row)
    # Batches of similar length: a transformer pads each batch to its longest text, so a mixed batch
    # computes mostly padding.
    missing = sorted(todo, key=lambda k: len(texts[todo[k][0]]))
    for start in range(0, len(missing), batch_size):
        part = missing[start : start + batch_size]
        vectors = embed([texts[todo[k][0]] for k in part])
        for key, vector in zip(part, vectors, strict=True):
            out[todo[key]] = vector
        if cache is not None:
            cache.put_many(embedder_id, list(zip(part, vectors, strict=True)))
    return out, len(missing)
