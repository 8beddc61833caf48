"""The ``VectorStore`` seam: few abstract methods, conveniences built on them."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import numpy as np

from .errors import DimensionMismatchError, VectorStoreError
from .lock import WriterLock
from .types import Hit, Record
from .where import validate_where

RESERVED_META = frozenset({"dim", "generation"})  # managed by every store, never set by callers


class VectorStore(ABC):
    """Stores ``(id, vector, payload)`` records and answers inner-product searches.

    Implementations provide the abstract methods; everything else is derived. ``write`` is the
    single write primitive and must be atomic: a reader or a crash sees all of it or none of it.

    Optional capabilities are declared, never guessed from the type: a store with a keyword index of
    its own says so with :attr:`full_text` and answers :meth:`text_search`.
    """

    # Cross-process writer lock taken by ``batch`` (None: the store relies on its own exclusivity).
    _writer_lock: WriterLock | None = None
    _mutex: threading.RLock  # set by each implementation: one operation at a time per instance
    _closed: bool = False

    # -- required -------------------------------------------------------------------------------

    @property
    @abstractmethod
    def dim(self) -> int:
        """Dimension of every stored vector."""

    @property
    @abstractmethod
    def generation(self) -> int:
        """Committed-write counter: any change to records or meta bumps it (a cache key for derived
        indexes such as a keyword index kept beside the store)."""

    @abstractmethod
    def get_meta(self) -> dict[str, str]:
        """All persisted metadata (``dim``, ``generation`` and whatever callers stored)."""

    @abstractmethod
    def _write_meta(self, kv: Mapping[str, str]) -> None:
        """Persist already-checked caller metadata as part of one commit."""

    @abstractmethod
    def write(
        self,
        *,
        delete_ids: Iterable[int] = (),
        delete_where: Mapping[str, Any] | None = None,
        add: Sequence[Record] = (),
    ) -> tuple[int, int]:
        """Delete ``delete_ids`` and records matching ``delete_where``, then add ``add``, atomically.

        Returns ``(removed, added)``. Missing ids are ignored; added ids must be new once the
        deletions are applied (so a replacement may reuse the ids it removes).
        """

    @abstractmethod
    def search_many(
        self, vectors: np.ndarray, k: int, *, where: Mapping[str, Any] | None = None
    ) -> list[list[Hit]]:
        """For each row of ``vectors`` (shape ``(n, dim)``), the ``k`` best hits by inner product."""

    @abstractmethod
    def get(self, ids: Iterable[int]) -> list[Record | None]:
        """The records for ``ids`` in the same order, ``None`` where an id is not stored."""

    @abstractmethod
    def payloads(self, where: Mapping[str, Any] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
        """Iterate ``(id, payload)`` in id order, optionally filtered."""

    @abstractmethod
    def batch(self) -> AbstractContextManager[VectorStore]:
        """Group writes into one atomic commit: ``with store.batch(): ...``; an exception undoes all."""

    # -- optional capability: full-text (BM25) search -------------------------------------------

    @property
    def full_text(self) -> bool:
        """Whether :meth:`text_search` is available (a keyword index inside the store)."""
        return False

    def text_search(self, query: str, k: int, *, where: Mapping[str, Any] | None = None) -> list[Hit]:
        """The ``k`` best keyword (BM25) matches for ``query``, best first; only where :attr:`full_text`."""
        raise VectorStoreError(f"{type(self).__name__} has no full-text index; check `full_text` first")

    # -- conveniences ---------------------------------------------------------------------------

    def set_meta(self, **kv: str) -> None:
        """Persist caller metadata, e.g. ``set_meta(note="...")``; values must be strings."""
        for key, value in kv.items():
            if key in RESERVED_META:
                raise ValueError(f"meta key {key!r} is managed by the store")
            if not isinstance(value, str):
                raise ValueError(f"meta values must be strings; {key}={value!r}")
        self._write_meta(kv)

    def writing(self, timeout: float = 0.0) -> AbstractContextManager[None]:
        """Hold the writer lock across several batches (one indexing run), waiting up to ``timeout``
        seconds for another writer (``StoreLockedError``). Batches inside do not take it again."""
        return self._locked(timeout, join=False)

    @contextmanager
    def _locked(self, timeout: float, *, join: bool) -> Iterator[None]:
        """Take the writer lock for a batch (``join``: unless this thread holds it already)."""
        lock = self._writer_lock
        if lock is None or (join and lock.held_here):
            yield
            return
        lock.acquire(timeout)
        try:
            yield
        finally:
            lock.release()

    def add(self, records: Sequence[Record]) -> None:
        """Add new records; raises ``DuplicateIdError`` or ``DimensionMismatchError`` (ValueErrors)."""
        self.write(add=records)

    def delete(self, ids: Iterable[int]) -> int:
        """Remove records by id; returns how many existed. Missing ids are ignored."""
        return self.write(delete_ids=ids)[0]

    def delete_where(self, where: Mapping[str, Any]) -> int:
        """Remove every record whose payload matches ``where``; returns how many."""
        if not where:
            # An empty filter matches everything; make wiping the store an explicit choice.
            raise ValueError("delete_where needs a non-empty filter; use delete(ids) to remove everything")
        return self.write(delete_where=where)[0]

    def replace_where(self, where: Mapping[str, Any], records: Sequence[Record]) -> tuple[int, int]:
        """Swap the records matching ``where`` for ``records`` in one atomic step: ``(removed, added)``."""
        if not where:
            raise ValueError("replace_where needs a non-empty filter")
        return self.write(delete_where=where, add=records)

    def search(self, vector: np.ndarray, k: int, *, where: Mapping[str, Any] | None = None) -> list[Hit]:
        """The ``k`` best hits for one vector, best first; fewer when fewer records match."""
        query = np.asarray(vector, dtype=np.float32)
        return self.search_many(query.reshape(1, -1), k, where=where)[0]

    def count(self, where: Mapping[str, Any] | None = None) -> int:
        """Number of records, optionally only those matching ``where``."""
        return sum(1 for _ in self.payloads(where))

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """Stored vectors as a ``(len(ids), dim)`` float32 array; ``KeyError`` names missing ids."""
        records = self.get(ids)
        missing = [i for i, r in zip(ids, records, strict=True) if r is None]
        if missing:
            raise KeyError(f"ids not in the store: {missing[:10]}")
        if not records:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([r.vector for r in records if r is not None]).astype(np.float32, copy=False)

    def update_payloads(self, updates: Mapping[int, Mapping[str, Any]]) -> int:
        """Replace the payloads of existing records (vectors kept); returns how many were updated.

        Missing ids are ignored. Backends may override this to avoid re-writing vectors.
        """
        ids = list(updates)
        current = [r for r in self.get(ids) if r is not None]
        new = [Record(r.id, r.vector, dict(updates[r.id])) for r in current]
        self.write(delete_ids=[r.id for r in current], add=new)
        return len(new)

    def ids(self, where: Mapping[str, Any] | None = None) -> list[int]:
        """Ids of the records matching ``where``, in id order."""
        return [i for i, _ in self.payloads(where)]

    def change_cursor(self) -> str | None:
        """An opaque mark of the committed state to ask ``changed_ids`` from later; None where the store
        keeps no change log."""
        return None

    def changed_ids(self, cursor: str) -> set[int] | None:
        """Ids added or deleted by the commits after ``cursor`` (from ``change_cursor``), where the store
        can tell cheaply; None otherwise (no log, or not back that far), and a follower such as a
        keyword index compares every id (``ids()``) instead."""
        return None

    def refresh(self) -> bool:
        """Pick up writes committed by other processes; True if anything changed."""
        return False

    def flush(self) -> None:
        """Make sure derived caches reflect the committed state (no-op where there are none)."""
        return None

    def compact(self) -> None:
        """Fold incremental state (e.g. a change log) into its compact form (no-op where there is none)."""
        return None

    def close(self) -> None:
        """Release files and connections; safe to call twice. The store must not be used afterwards."""
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            self._release()

    def _release(self) -> None:
        """Close the backend's files or connections (called once, by ``close``)."""
        return None

    def _check_open(self) -> None:
        if self._closed:
            raise VectorStoreError("this vector store is closed")

    def _check_search(self, vectors: np.ndarray, k: int, where: Mapping[str, Any] | None) -> np.ndarray:
        """Validate a search's arguments; returns the queries as a contiguous float32 (n, dim) array."""
        queries = np.ascontiguousarray(np.atleast_2d(np.asarray(vectors, dtype=np.float32)))
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise DimensionMismatchError(
                f"query shape {np.shape(vectors)} does not match the store's dimension {self.dim}; "
                f"embed the query with the embedder the store was built with"
            )
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        validate_where(where)
        return queries

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
