"""``FaissStore``: SQLite as the source of truth, a FAISS index as a crash-safe derived cache."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import faiss_index as fx
from . import faiss_log
from .base import VectorStore
from .errors import DimensionMismatchError, StoreNotFoundError, StoreWriteError, VectorStoreError
from .faiss_cache import DEFAULT_COMPACT_RATIO
from .faiss_mirror import IndexMirror
from .lock import WriterLock
from .migrations import migrate, pending
from .sqlite_records import RecordTable, connect, out_of_space, prepare_records
from .types import Hit, Record
from .where import validate_where

log = logging.getLogger(__name__)

DB_FILE = "store.sqlite"
LOCK_FILE = "write.lock"


@dataclass
class _Txn:
    changed: bool = False  # anything committed: bump the generation
    vectors_changed: bool = False  # ids/vectors changed: the index file must be rewritten
    index_touched: bool = False  # the in-memory index was modified: drop it on rollback
    ops: list[faiss_log.Op] = field(default_factory=list)  # the index changes, for the change log


class FaissStore(VectorStore):
    """Records in ``store.sqlite`` (WAL, ``synchronous=FULL``); vectors mirrored in a FAISS index.

    Every committed write bumps ``meta.generation``. ``index.faiss`` plus the ``index.json``
    sidecar (generation + sha256) is a cache: a snapshot, extended by ``index.log`` (each later
    commit's deleted ids and added vectors, appended after the SQLite commit), so a commit writes
    its own change rather than the whole index. If the snapshot is missing or corrupt, or the log
    does not reach the committed generation (a torn record), it is rebuilt from SQLite, so a crash
    at any moment loses at most the uncommitted write.
    Writes take ``write.lock`` (flock); readers never block and see the last committed state.
    This class owns the transactions and locks; the index and its cache are ``IndexMirror``'s.
    Use :meth:`open`, not the constructor.
    """

    def __init__(
        self, directory: Path, table: RecordTable, *, spec: fx.IndexSpec, timeout: float, read_only: bool,
        writer_lock: WriterLock | None = None, compact_ratio: float = DEFAULT_COMPACT_RATIO,
    ) -> None:
        self.directory = directory
        self._db = table
        self._conn = table.conn
        self._spec = spec
        self._timeout = timeout
        self._read_only = read_only
        self._writer_lock = writer_lock or WriterLock(directory / LOCK_FILE)
        self._mutex = threading.RLock()  # one connection shared by threads (e.g. Streamlit)
        self._txn: _Txn | None = None
        self._mirror = IndexMirror(directory, table, spec, compact_ratio)  # the FAISS index derived from SQLite
        self._counted: tuple[int, int] | None = None  # (generation, records) for count()
        self._dim = 0
        self._closed = False

    @classmethod
    def open(
        cls,
        directory: str | Path,
        *,
        dim: int | None = None,
        create: bool = True,
        index_kind: str = "auto",
        ann_threshold: int = fx.DEFAULT_ANN_THRESHOLD,
        nprobe: int = fx.DEFAULT_NPROBE,
        timeout: float = 10.0,
        read_only: bool = False,
        writer_lock: WriterLock | None = None,
        compact_ratio: float = DEFAULT_COMPACT_RATIO,
    ) -> FaissStore:
        """Open (or create) the store in ``directory``.

        ``dim`` is required to create a store and checked against an existing one
        (``DimensionMismatchError``). ``timeout`` is how long writes wait for another process's
        writer lock before ``StoreLockedError``. ``read_only`` refuses writes and cache saves.
        ``writer_lock`` is the lock writers share (default ``write.lock`` in ``directory``); a caller
        that guards more than the store, e.g. a whole knowledge base, passes its own.

        ``index_kind="auto"`` searches exactly (flat) below ``ann_threshold`` vectors (default
        100,000) and with an IVF index at or above it, switching by itself as the store grows;
        ``"flat"`` is always exact. ``nprobe`` (default 32) is the IVF lists searched per query:
        higher is slower and closer to exact. Deleted vectors are removed from either kind.

        ``compact_ratio`` (default 0.5): commits append to ``index.log`` until it outgrows this share
        of the ``index.faiss`` snapshot, then a new snapshot is written; 0 writes one every commit.
        """
        spec = fx.IndexSpec(index_kind, ann_threshold, nprobe)  # validate early
        if not 0 <= float(compact_ratio) < float("inf"):
            raise ValueError(f"compact_ratio must be >= 0, got {compact_ratio!r}")
        directory = Path(directory)
        if not (directory / DB_FILE).exists():
            if not create or read_only:
                raise StoreNotFoundError(f"no vector store in {directory}; build the knowledge base first")
            directory.mkdir(parents=True, exist_ok=True)
        table = RecordTable(connect(directory / DB_FILE))
        store = cls(
            directory, table, spec=spec, timeout=timeout, read_only=read_only, writer_lock=writer_lock,
            compact_ratio=compact_ratio,
        )
        try:
            store._initialise(dim)
            store.refresh()
            if not read_only and store._mirror.lags():
                store._save_if_unlocked()
        except BaseException:
            store.close()
            raise
        return store

    def _initialise(self, dim: int | None) -> None:
        if pending(self._conn) or self._db.meta_value("dim") is None:
            if self._read_only:
                raise VectorStoreError(f"store in {self.directory} needs an upgrade; open it writable once")
            with self._locked(self._timeout, join=True):
                migrate(self._conn)
                if self._db.meta_value("dim") is None:  # re-checked under the lock: another may have won
                    if dim is None:
                        raise VectorStoreError("dim is required to create a new vector store")
                    rows = [("dim", str(int(dim))), ("generation", "0"), ("index_kind", self._spec.kind)]
                    self._conn.execute("BEGIN IMMEDIATE")
                    self._db.set_meta(rows)
                    self._conn.execute("COMMIT")
        self._dim = self._mirror.cache.dim = int(self._db.meta_value("dim") or 0)
        if dim is not None and int(dim) != self._dim:
            embedder = self._db.meta_value("embedder")
            built = f"dim={self._dim}" + (f" by embedder {embedder!r}" if embedder else "")
            raise DimensionMismatchError(
                f"the knowledge base in {self.directory} was built with {built}, but the current "
                f"embedder produces dim={dim}; switch back to that embedder or rebuild the "
                f"knowledge base into a new directory"
            )

    # -- properties and metadata ----------------------------------------------------------------

    @property
    def dim(self) -> int:
        """Dimension of every stored vector."""
        return self._dim

    @property
    def generation(self) -> int:
        """Committed-write counter; any change to records or meta bumps it (useful as a cache key)."""
        with self._mutex:
            return self._db.generation()

    @property
    def index_ntotal(self) -> int:
        """Vectors in the in-memory FAISS index after a refresh (diagnostics; equals ``count()``)."""
        with self._snapshot():
            return int(self._mirror.index.ntotal)

    def get_meta(self) -> dict[str, str]:
        """All persisted metadata, including ``dim`` and ``generation``."""
        with self._mutex:
            self._check_open()
            return self._db.meta()

    def _write_meta(self, kv: Mapping[str, str]) -> None:
        with self.batch():
            self._db.set_meta(kv.items())
            self._mark(changed=bool(kv))

    # -- writes ---------------------------------------------------------------------------------

    @contextmanager
    def batch(self, *, timeout: float | None = None) -> Iterator[FaissStore]:
        """One SQLite transaction and one index save for everything inside; an exception undoes all.

        Holds the writer lock throughout (waiting up to ``timeout``, default the store's) unless
        this thread already holds it (:meth:`writing`). Nested batches join the outermost one.
        """
        self._check_open()
        if self._read_only:
            raise VectorStoreError("this store was opened read_only; open it writable to change it")
        # The writer lock before the mutex: a thread waiting for another's indexing run must not
        # hold the mutex that run needs for its next batch.
        with self._locked(self._timeout if timeout is None else timeout, join=True), self._mutex:
            self._check_open()
            if self._txn is not None:
                yield self
                return
            txn = _Txn()
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                gen = self._db.generation()
                self._mirror.ensure(gen)  # another process may have written since we loaded
                self._txn = txn
                yield self
                if txn.changed:
                    gen += 1
                    self._conn.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (str(gen),))
                self._conn.execute("COMMIT")
            except BaseException as exc:
                if self._conn.in_transaction:
                    try:
                        self._conn.execute("ROLLBACK")
                    except sqlite3.Error:  # a failed COMMIT may have ended it already
                        log.debug("rollback after a failed write failed too", exc_info=True)
                if txn.index_touched:
                    self._mirror.drop()
                if out_of_space(exc):
                    raise StoreWriteError(
                        f"could not write the vector store in {self.directory} ({exc}); nothing of this write "
                        "was saved and what was saved before is intact: free disk space and run it again"
                    ) from exc
                raise
            finally:
                self._txn = None
            if txn.changed:
                self._mirror.committed(gen, txn.ops, vectors_changed=txn.vectors_changed)

    def write(
        self,
        *,
        delete_ids: Iterable[int] = (),
        delete_where: Mapping[str, Any] | None = None,
        add: Sequence[Record] = (),
    ) -> tuple[int, int]:
        """Delete by id and/or filter, then add, atomically; returns ``(removed, added)``."""
        rows, matrix = prepare_records(add, self._dim)
        ids_to_delete = [int(i) for i in delete_ids]
        validate_where(delete_where)
        with self.batch():
            # A savepoint per call keeps SQLite and the index in step even if the caller catches
            # an error (e.g. DuplicateIdError) inside a batch and carries on.
            self._conn.execute("SAVEPOINT write_op")
            try:
                removed = self._db.delete(ids_to_delete, delete_where)
                self._db.insert(rows)
            except BaseException:
                self._conn.execute("ROLLBACK TO write_op")
                self._conn.execute("RELEASE write_op")
                raise
            self._conn.execute("RELEASE write_op")
            if removed or rows:
                self._mark(changed=True, vectors=True)
                assert self._txn is not None
                if removed:
                    self._txn.ops.append(self._mirror.remove(np.asarray(removed, dtype=np.int64)))
                if rows:
                    self._txn.ops.append(self._mirror.add(np.asarray([r[0] for r in rows], dtype=np.int64), matrix))
        return len(removed), len(rows)

    def update_payloads(self, updates: Mapping[int, Mapping[str, Any]]) -> int:
        """Replace payloads in place (vectors and index untouched); missing ids are ignored."""
        with self.batch():
            n = self._db.update_payloads(updates)
            self._mark(changed=n > 0)
        return n

    def _mark(self, *, changed: bool, vectors: bool = False) -> None:
        assert self._txn is not None
        self._txn.changed |= changed
        self._txn.vectors_changed |= vectors
        self._txn.index_touched |= vectors

    # -- reads ----------------------------------------------------------------------------------

    def search_many(
        self, vectors: np.ndarray, k: int, *, where: Mapping[str, Any] | None = None
    ) -> list[list[Hit]]:
        """Best ``k`` hits by inner product for each query row, best first."""
        queries = self._check_search(vectors, k, where)
        empty: list[list[Hit]] = [[] for _ in range(len(queries))]
        with self._snapshot():
            allowed = None
            limit = int(self._mirror.index.ntotal)
            if where:
                allowed = np.asarray(self._db.ids_matching(where), dtype=np.int64)
                limit = len(allowed)
            if min(k, limit) == 0 or len(queries) == 0:
                return empty
            scores, labels = fx.search(self._mirror.index, queries, min(k, limit), allowed)
            payloads = self._db.raw_payloads(sorted({int(i) for i in labels.ravel() if i >= 0}))
        return [
            [
                Hit(int(i), float(s), json.loads(payloads[int(i)]))
                for s, i in zip(srow, irow, strict=True)
                if i >= 0 and int(i) in payloads
            ]
            for srow, irow in zip(scores, labels, strict=True)
        ]

    def get(self, ids: Iterable[int]) -> list[Record | None]:
        """Records for ``ids`` in order (``None`` where missing), vectors read from SQLite."""
        wanted = [int(i) for i in ids]
        with self._snapshot(index=False):
            found = self._db.get(wanted)
        return [found.get(i) for i in wanted]

    def payloads(self, where: Mapping[str, Any] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
        """Iterate ``(id, payload)`` in id order, a page at a time (not one snapshot across pages)."""
        validate_where(where)
        after: int | None = -1
        while after is not None:
            with self._mutex:
                self._check_open()
                page, after = self._db.payload_page(where, after)
            yield from page

    def change_cursor(self) -> str | None:
        """The change log's token and the committed generation (None while there is no log)."""
        with self._snapshot():
            return self._mirror.cursor()

    def changed_ids(self, cursor: str) -> set[int] | None:
        """Ids added or deleted after ``cursor``, read from the change log; None once a snapshot has
        folded those commits in (a new log), or for a cursor of another store."""
        with self._snapshot():
            return self._mirror.touched(cursor)

    def ids(self, where: Mapping[str, Any] | None = None) -> list[int]:
        """Ids matching ``where`` in id order, without decoding payloads where SQL decides the filter:
        the keyword index lists every id at each sync (10k chunks: 4 ms, 140 ms through payloads)."""
        validate_where(where)
        with self._snapshot(index=False):
            return sorted(self._db.ids_matching(where))

    def count(self, where: Mapping[str, Any] | None = None) -> int:
        """Number of records matching ``where`` (all when None; that one kept per generation: SQLite's
        COUNT(*) scans an index, 30-40 ms at 1M chunks, and every retrieval asks it)."""
        with self._snapshot(index=False):
            if where is not None or self._txn is not None:
                return self._db.count(where)
            generation = self._db.generation()
            if self._counted is None or self._counted[0] != generation:
                self._counted = (generation, self._db.count())
            return self._counted[1]

    # -- index cache ----------------------------------------------------------------------------

    @contextmanager
    def _snapshot(self, *, index: bool = True) -> Iterator[None]:
        """A read transaction: one consistent view of SQLite, with the index brought up to it."""
        with self._mutex:
            self._check_open()
            if self._txn is not None:  # inside our own batch the index already tracks it
                yield
                return
            self._conn.execute("BEGIN")
            try:
                if index:
                    self._mirror.ensure(self._db.generation())
                yield
            finally:
                self._conn.execute("COMMIT")

    def refresh(self) -> bool:
        """Reload the index if another process committed since; True if it changed. Cheap otherwise."""
        before = self._mirror.generation
        with self._snapshot():
            return self._mirror.generation != before

    def flush(self, *, timeout: float | None = None) -> None:
        """Write the index cache if it lags the committed state (e.g. after a rebuild on open)."""
        with self.batch(timeout=timeout):
            self._mirror.save()

    save = flush

    def compact(self, *, timeout: float | None = None) -> None:
        """Fold the change log into a fresh snapshot, so opening replays nothing."""
        with self.batch(timeout=timeout):
            self._mirror.save(fold_log=True)

    def _save_if_unlocked(self) -> None:
        # Opportunistic: a reader that rebuilt the index saves it for the next opener, but never
        # waits for (or holds up) a writer.
        try:
            self.flush(timeout=0)
        except VectorStoreError:
            log.debug("writer busy; not saving the rebuilt index cache")

    # -- lifecycle ------------------------------------------------------------------------------

    def _release(self) -> None:
        self._conn.close()
        self._mirror.index = None
