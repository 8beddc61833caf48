"""The read side of ``MilvusStore``: consistent reads (a seqlock on the committed generation when a
server may have other writers), scans, searches, lookups and counts."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from .errors import VectorStoreError
from .milvus_where import conjoin, int_list, milvus_expr
from .types import Hit, Record
from .where import matches

T = TypeVar("T")
PAGE = 1000  # rows per query page (Milvus caps offset + limit at 16,384)
IDS_PER_LOOKUP = 16384  # ids per "rid in [...]" query: each query costs a pass over the rows in Milvus Lite
MAX_TOPK = 16384  # Milvus's limit on k
READ_ATTEMPTS = 5  # a server read that saw another process commit mid-way is retried this often


class MilvusReads:
    """Reads for :class:`~vectorstore.milvus_store.MilvusStore`, which provides the state below."""

    _mutex: threading.RLock
    _client: Any
    _state: dict[str, Any]
    _txn: Any
    _lite_path: str | None
    collection: str


    if TYPE_CHECKING:  # provided by MilvusStore and VectorStore

        def _check_open(self) -> None: ...
        def _load_state(self) -> None: ...
        def _visible(self) -> str: ...
        def _check_search(self, vectors: np.ndarray, k: int, where: Mapping[str, Any] | None) -> np.ndarray: ...
        @property
        def full_text(self) -> bool: ...

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """A consistent read: on a server, pick up the latest committed state first."""
        with self._mutex:
            self._check_open()
            if self._txn is None and self._lite_path is None:
                self._load_state()
            yield

    def _consistent(self, read: Callable[[], T]) -> T:
        """``read()`` against one committed state, even while another process writes to the server.

        A writer's commit makes its batch visible, then deletes the rows the batch replaced; a
        read filtered by an older state but run after those deletions would miss the replaced rows
        (neither old nor new visible). So on a server ``read()`` runs with the state we last saw,
        the state is read again afterwards, and if a commit came in between, ``read()`` runs again
        with the new one (a seqlock). The after-read is what makes it right: any deletion the query
        saw follows a commit that a strongly consistent read made later must see. Each strong read
        waits for the server's next time tick (``proxy.timeTickInterval``, 200 ms by default), so
        this costs one state read per call, not two. Inside this store's own batch, and on Milvus
        Lite (one process), nobody else commits.
        """
        with self._mutex:
            self._check_open()
            if self._txn is not None or self._lite_path is not None:
                return read()
            for _ in range(READ_ATTEMPTS):
                generation = self._state["generation"]
                result = read()
                self._load_state()
                if self._state["generation"] == generation:
                    return result
            raise VectorStoreError(
                f"Milvus collection {self.collection!r} changed during each of {READ_ATTEMPTS} attempts to "
                "read it (another process is committing continuously); try again"
            )

    def refresh(self) -> bool:
        """Re-read the committed state (other processes' writes on a server); True if it changed."""
        with self._mutex:
            self._check_open()
            before = self._state.get("generation")
            if self._txn is None:
                self._load_state()
            return self._state.get("generation") != before

    def _scan(self, expr: str = "", fields: Sequence[str] = ()) -> Iterator[tuple[int, int, dict[str, Any]]]:
        """``(pk, rid, row)`` of every visible row matching ``expr``, in pk order, a page at a time."""
        base = conjoin(self._visible(), expr)
        last = -1
        while True:
            page = self._client.query(
                self.collection, filter=conjoin(base, f"pk > {last}"), output_fields=["pk", "rid", *fields],
                limit=PAGE,
            )
            page.sort(key=lambda r: r["pk"])
            for row in page:
                yield int(row["pk"]), int(row["rid"]), row
            if len(page) < PAGE:
                return
            last = int(page[-1]["pk"])

    def _matching(self, where: Mapping[str, Any] | None) -> list[tuple[int, int]]:
        """``(pk, rid)`` of the visible rows whose payload matches ``where``."""
        expr, exact = milvus_expr(where)
        if exact:
            return [(pk, rid) for pk, rid, _ in self._scan(expr)]
        return [(pk, rid) for pk, rid, row in self._scan(expr, ["payload"]) if matches(row["payload"], where)]

    def search_many(
        self, vectors: np.ndarray, k: int, *, where: Mapping[str, Any] | None = None
    ) -> list[list[Hit]]:
        """Best ``k`` hits by inner product (Milvus's IP metric: raw dot products) per query row."""
        queries = self._check_search(vectors, k, where)

        def run() -> list[list[Hit]]:
            expr = self._filter(where)
            if expr is None or k == 0 or len(queries) == 0:
                return [[] for _ in range(len(queries))]
            out: list[list[Hit]] = []
            for start in range(0, len(queries), 1024):
                result = self._client.search(
                    self.collection, data=queries[start : start + 1024].tolist(), anns_field="vector",
                    limit=min(k, MAX_TOPK), filter=expr, output_fields=["rid", "payload"],
                    search_params={"metric_type": "IP"},
                )
                out += [[_hit(h, float(h["distance"])) for h in hits] for hits in result]
            return out

        return self._consistent(run)

    def _filter(self, where: Mapping[str, Any] | None) -> str | None:
        """The server-side filter for ``where`` (None: nothing can match)."""
        expr, exact = milvus_expr(where)
        if exact:
            return conjoin(self._visible(), expr)
        allowed = [pk for pk, _ in self._matching(where)]
        return conjoin(self._visible(), f"pk in {int_list(allowed)}") if allowed else None

    def text_search(self, query: str, k: int, *, where: Mapping[str, Any] | None = None) -> list[Hit]:
        """BM25 full-text search over ``payload["text"]`` (or the store's ``full_text_of(payload)``,
        jieba-analysed); needs ``full_text=True``.

        Scores are BM25 scores (higher = better), not on the inner-product scale.
        """
        if not self.full_text:
            raise VectorStoreError("this Milvus collection was created without full_text=True; no BM25 field")
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")

        def run() -> list[Hit]:
            expr = self._filter(where)
            if expr is None or k == 0 or not query.strip():
                return []
            result = self._client.search(
                self.collection, data=[query], anns_field="sparse", limit=min(k, MAX_TOPK), filter=expr,
                output_fields=["rid", "payload"], search_params={"metric_type": "BM25"},
            )
            # Milvus Lite reports BM25 as a negative distance, a server as a positive score.
            return [_hit(h, abs(float(h["distance"]))) for h in result[0]]

        return self._consistent(run)

    def get(self, ids: Iterable[int]) -> list[Record | None]:
        """Records for ``ids`` in order (``None`` where missing)."""
        wanted = [int(i) for i in ids]
        unique = sorted(set(wanted))

        def run() -> dict[int, Record]:
            found: dict[int, Record] = {}
            for start in range(0, len(unique), PAGE):
                expr = f"rid in {int_list(unique[start : start + PAGE])}"
                for _, rid, row in self._scan(expr, ["vector", "payload"]):
                    found[rid] = Record(rid, np.asarray(row["vector"], dtype=np.float32), row["payload"])
            return found

        found = self._consistent(run)
        return [found.get(i) for i in wanted]

    def ids(self, where: Mapping[str, Any] | None = None) -> list[int]:
        """Ids of the records matching ``where``, in id order."""
        return self._consistent(lambda: sorted(rid for _, rid in self._matching(where)))

    def payloads(self, where: Mapping[str, Any] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
        """Iterate ``(id, payload)`` in id order: the matching ids first, then payloads a page at a time."""
        def page(pks: list[int]) -> dict[int, dict[str, Any]]:
            return {pk: row["payload"] for pk, _, row in self._scan(f"pk in {int_list(pks)}", ["payload"])}

        order = self._consistent(lambda: sorted((rid, pk) for pk, rid in self._matching(where)))
        for start in range(0, len(order), PAGE):
            chunk = order[start : start + PAGE]
            rows = self._consistent(functools.partial(page, [pk for _, pk in chunk]))
            yield from ((rid, rows[pk]) for rid, pk in chunk if pk in rows)

    def count(self, where: Mapping[str, Any] | None = None) -> int:
        """Number of records matching ``where`` (all when None)."""
        expr, exact = milvus_expr(where)

        def run() -> int:
            if not exact:
                return len(self._matching(where))
            rows = self._client.query(self.collection, filter=conjoin(self._visible(), expr),
                                      output_fields=["count(*)"])
            return int(rows[0]["count(*)"]) if rows else 0

        return self._consistent(run)



def _hit(h: Mapping[str, Any], score: float) -> Hit:
    entity = h["entity"]
    return Hit(int(entity["rid"]), score, entity["payload"])
