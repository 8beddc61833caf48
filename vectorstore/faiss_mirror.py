"""The store's in-memory FAISS index, derived from SQLite: the generation it reflects, how it is brought up
to a newer one (log replayed, cache loaded, or rebuilt) and how a commit reaches the on-disk cache."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from . import faiss_index as fx
from . import faiss_log
from .faiss_cache import DiskCache
from .sqlite_records import RecordTable

log = logging.getLogger(__name__)


class IndexMirror:
    """The FAISS index mirroring one store's records. SQLite stays the truth: whatever the cache holds,
    the index can be rebuilt from it. The store owns transactions and locks; it calls in here inside a
    read transaction (to bring the index up) or holding the writer lock (to change or persist it)."""

    def __init__(self, directory: Path, table: RecordTable, spec: fx.IndexSpec, compact_ratio: float) -> None:
        self.directory = directory
        self._db = table
        self.spec = spec
        self.index: Any = None
        self.generation: int | None = None  # generation the in-memory index reflects
        self.cache = DiskCache(directory, 0, spec, float(compact_ratio))  # dim set once known

    def ensure(self, generation: int) -> None:
        """Make the in-memory index reflect ``generation`` (caller is inside a transaction)."""
        if self.index is not None and self.generation == generation:
            return
        count = self._db.count()
        if self.index is not None and self.generation is not None:  # another process committed since
            if self.cache.catch_up(self.index, self.generation, generation, count):
                self.generation = generation
                return
        self.index = self.cache.load(generation, count)
        if self.index is None:
            self.rebuild()
        self.generation = generation

    def rebuild(self) -> None:
        """Build the index from SQLite (caller is inside a transaction or holds the writer lock). The old
        index is let go first: a retrain at 400k x 384 dims held it beside the vectors read and the new one."""
        self.index = None
        ids, matrix = self._db.all_vectors(self.cache.dim)
        kind = self.spec.resolve(len(ids))
        log.info("rebuilding the FAISS index of %s from SQLite (%d vectors, %s)", self.directory, len(ids), kind)
        self.index = fx.build_index(self.spec, self.cache.dim, ids, matrix)
        self.cache.sha = None

    def drop(self) -> None:
        """Forget the index (a rolled-back write touched it): the next read loads or rebuilds it."""
        self.index, self.generation, self.cache.sha = None, None, None

    def remove(self, ids: np.ndarray) -> faiss_log.Op:
        """Delete ``ids`` from the index; returns the op for the change log."""
        self.index.remove_ids(ids)
        return ("D", ids)

    def add(self, ids: np.ndarray, matrix: np.ndarray) -> faiss_log.Op:
        """Add ``matrix`` under ``ids``; returns the op for the change log (with the IVF lists, if any)."""
        lists = fx.ivf_lists(self.index, matrix)
        fx.add_vectors(self.index, matrix, ids, lists)
        return ("A", ids, matrix) if lists is None else ("P", ids, matrix, lists)

    def committed(self, generation: int, ops: list[faiss_log.Op], *, vectors_changed: bool) -> None:
        """Record that the index now reflects ``generation`` and persist the commit: a log record, or a
        snapshot when the log cannot take it or the index was rebuilt (e.g. it grew past ann_threshold)."""
        base, self.generation = self.generation, generation
        if vectors_changed and fx.needs_rebuild(self.index, self.spec):
            self.rebuild()
        elif self.cache.append(self.index, base, generation, ops):
            return
        self.cache.save(self.index, generation)

    def lags(self) -> bool:
        """Whether the cache files do not reach the index's generation (e.g. after a rebuild on open)."""
        return self.cache.lags(self.generation)

    def save(self, *, fold_log: bool = False) -> None:
        """Write a snapshot if the cache lags the index (or, with ``fold_log``, if opening would replay a log)."""
        if self.lags() or (fold_log and self.cache.has_log):
            self.cache.save(self.index, self.generation or 0)

    def cursor(self) -> str | None:
        """The change log's token and the index's generation (None while there is no log)."""
        return self.cache.cursor(self.generation)

    def touched(self, cursor: str) -> set[int] | None:
        """Ids added or deleted after ``cursor``, from the change log (None when it does not reach back)."""
        return self.cache.touched(cursor, self.generation)
