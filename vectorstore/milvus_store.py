"""``MilvusStore``: the vector-store seam on Milvus, embedded (Milvus Lite, a local ``.db``) or a server."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from . import milvus_lite_server as lite
from .base import VectorStore
from .errors import DimensionMismatchError, DuplicateIdError, StoreNotFoundError, VectorStoreError
from .lock import WriterLock
from .milvus_location import LITE_FILE, MANIFEST, default_collection, read_manifest, resolve, write_manifest
from .milvus_reads import IDS_PER_LOOKUP, PAGE, MilvusReads
from .milvus_schema import TEXT_MAX_BYTES, create_collections
from .milvus_where import conjoin, int_list
from .sqlite_records import prepare_records
from .types import Record
from .where import validate_where

log = logging.getLogger(__name__)
T = TypeVar("T")
__all__ = ["LITE_FILE", "MANIFEST", "MilvusStore", "default_collection", "read_manifest", "write_manifest"]

STATE_KEY = "state"
LITE_FLUSH_ROWS = 1000  # Milvus Lite searches unflushed rows row by row (~20 us each): seal them past this
LOCK_WAIT = 10.0  # seconds a batch waits for another writer's lock (when the store was given one)
FullTextOf = Callable[[Mapping[str, Any]], str]
"""What a record's payload puts in the BM25 field."""


def payload_text(payload: Mapping[str, Any]) -> str:
    """The default text of the BM25 field: ``payload["text"]``."""
    return str(payload.get("text") or "")


@dataclass
class _Txn:
    gen: int  # the generation this batch commits as; its rows are written with born = gen
    deletes: set[int] = field(default_factory=set)  # internal pks hidden now, removed after commit
    meta: dict[str, str] = field(default_factory=dict)
    added: int = 0
    changed: bool = False


class MilvusStore(MilvusReads, VectorStore):
    """Records in a Milvus collection, meta and the commit point in a one-row side collection.

    Each row has an internal auto-id ``pk``, the caller's id ``rid`` and ``born``, the generation
    that wrote it. The ``state`` row holds ``dim``, ``generation``, caller meta and a journal.
    A batch inserts its rows with ``born = generation + 1`` (invisible: readers filter
    ``born <= generation``), then one upsert of the state row commits it (new generation, the pks
    to delete in the journal, hidden from readers at once), then the old rows are deleted and the
    journal cleared. A crash before the upsert leaves rows that the next writable open deletes;
    a crash after it leaves a journal that the next open finishes. So readers see all of a batch
    or none of it, and a replaced file never goes missing (on a server, where other processes read
    while one writes, a read that overlapped a commit is retried: :meth:`_consistent`). One writer
    at a time per collection: Milvus Lite enforces it (one process per ``.db``); on a server it is
    the caller's rule.
    Use :meth:`open`, not the constructor.
    """

    def __init__(self, client: Any, *, uri: str, collection: str, lite_path: str | None, read_only: bool) -> None:
        self.uri = uri
        self.collection = collection
        self._client = client
        self._states = f"{collection}_state"
        self._lite_path = lite_path
        self._read_only = read_only
        self._mutex = threading.RLock()
        self._state: dict[str, Any] = {}
        self._txn: _Txn | None = None
        self._unflushed = 0
        self._closed = False
        self._full_text_of: FullTextOf = payload_text

    @classmethod
    def open(
        cls,
        directory: str | Path | None,
        *,
        dim: int | None = None,
        uri: str | None = None,
        token: str | None = None,
        collection: str | None = None,
        create: bool = True,
        read_only: bool = False,
        full_text: bool | None = False,
        full_text_of: FullTextOf = payload_text,
        index_type: str = "FLAT",
        index_params: Mapping[str, Any] | None = None,
        record_location: bool = True,
        writer_lock: WriterLock | None = None,
    ) -> MilvusStore:
        """Open (or create) the store of ``directory``.

        ``uri`` is where a new store goes: a local path ending in ``.db`` (Milvus Lite, embedded)
        or ``http(s)://host:19530`` (a Milvus server; ``token`` as ``user:password`` or an API
        key). Without it the store is a Milvus Lite file inside ``directory``. Once created, the
        directory's ``milvus.json`` records the URI and collection and wins over ``uri``; the
        token is never written. ``directory=None`` opens ``uri`` directly (needs ``collection``).
        ``full_text`` (at creation) adds a jieba-analysed BM25 field fed from ``payload["text"]``
        for :meth:`text_search`; ``None`` adds it where the server can (Milvus 2.5+, Milvus Lite).
        ``full_text_of(payload)`` is the text that field gets instead, for a caller that indexes more
        than the stored text (a knowledge base: the heading path in front); every writer of the
        collection must pass the same one, as the store does not record it.
        ``index_type`` is Milvus's (``FLAT`` = exact; ``HNSW`` or ``IVF_FLAT`` for millions of
        vectors on a server), always with the IP metric. ``record_location=False``: the caller keeps
        the URI and collection itself (a knowledge base's manifest), so no ``milvus.json`` is written.
        ``writer_lock``: a cross-process lock that batches take (Milvus itself has none on a server).
        """
        directory = Path(directory) if directory is not None else None
        manifest = read_manifest(directory) if directory is not None else None
        if manifest:
            if uri and uri != manifest["uri"]:
                log.info("store %s lives at %s (milvus.json); ignoring uri %s", directory, manifest["uri"], uri)
            uri, collection = manifest["uri"], collection or manifest["collection"]
        if uri is None:
            if directory is None:
                raise VectorStoreError("a Milvus store needs a directory or a uri")
            uri = LITE_FILE
        if collection is None:
            if directory is None:
                raise VectorStoreError("opening a Milvus uri without a directory needs a collection name")
            collection = default_collection(directory)
        target, lite_path = resolve(uri, directory)
        if lite_path is not None and not Path(lite_path).exists():
            if not create or read_only:
                raise StoreNotFoundError(f"no Milvus Lite store at {lite_path}; build the knowledge base first")
            Path(lite_path).parent.mkdir(parents=True, exist_ok=True)
        client = lite.connect(target, token=token, lite_path=lite_path)
        store = cls(client, uri=target, collection=collection, lite_path=lite_path, read_only=read_only)
        store._writer_lock = writer_lock
        store._full_text_of = full_text_of
        try:
            store._initialise(dim, create=create, full_text=full_text, index_type=index_type,
                              index_params=dict(index_params or {}))
            if directory is not None and not manifest and not read_only and record_location:
                write_manifest(directory, uri, collection)
        except BaseException:
            store.close()
            raise
        return store

    # -- schema and state -----------------------------------------------------------------------

    def _initialise(
        self, dim: int | None, *, create: bool, full_text: bool | None, index_type: str,
        index_params: dict[str, Any],
    ) -> None:
        c = self._client
        exists = c.has_collection(self._states)
        if exists:  # a reopened collection starts released
            c.load_collection(self._states)
        if not exists or not c.get(self._states, ids=[STATE_KEY]):
            if self._read_only or not create:
                raise StoreNotFoundError(f"no Milvus collection {self.collection!r} at {self.uri}")
            if dim is None:
                raise VectorStoreError("dim is required to create a new vector store")
            if c.has_collection(self.collection):  # a crash between the two creations: start over
                c.drop_collection(self.collection)
            self._create(int(dim), full_text, index_type, index_params)
        else:
            c.load_collection(self.collection)
        self._load_state()
        if dim is not None and int(dim) != self.dim:
            embedder = self._state["meta"].get("embedder") or self._state["meta"].get("embedder_id")
            built = f"dim={self.dim}" + (f" by embedder {embedder!r}" if embedder else "")
            raise DimensionMismatchError(
                f"the knowledge base in collection {self.collection!r} at {self.uri} was built with {built}, "
                f"but the current embedder produces dim={dim}; switch back to that embedder or rebuild the "
                f"knowledge base into a new collection"
            )
        if not self._read_only:
            self._recover()

    def _create(self, dim: int, full_text: bool | None, index_type: str, index_params: dict[str, Any]) -> None:
        full_text = create_collections(self._client, self.collection, self._states, dim=dim, full_text=full_text,
                                       index_type=index_type, index_params=index_params, uri=self.uri)
        state = {"dim": dim, "generation": 0, "meta": {}, "journal": [], "full_text": full_text, "schema": 1}
        self._put_state(state)  # the state row last: its presence means the store exists

    def _load_state(self) -> None:
        rows = self._client.get(self._states, ids=[STATE_KEY], output_fields=["value"])
        if not rows:
            raise VectorStoreError(f"the state row of Milvus collection {self.collection!r} is missing")
        value = rows[0]["value"]
        self._state = json.loads(value) if isinstance(value, str) else dict(value)

    def _put_state(self, state: dict[str, Any]) -> None:
        self._client.upsert(self._states, [{"key": STATE_KEY, "value": state, "unused": [0.0, 0.0]}])
        self._state = state

    def _recover(self) -> None:
        """Finish a committed batch's deletions; drop rows of a batch that never committed."""
        journal = list(self._state.get("journal") or [])
        if journal:
            log.info("finishing an interrupted commit in %s (%d deletions)", self.collection, len(journal))
            self._delete_pks(journal)
            self._put_state({**self._state, "journal": []})
        self._client.delete(self.collection, filter=f"born > {int(self._state['generation'])}")

    def _delete_pks(self, pks: Sequence[int]) -> None:
        for start in range(0, len(pks), PAGE):
            self._client.delete(self.collection, ids=[int(p) for p in pks[start : start + PAGE]])

    def _visible(self) -> str:
        """The rows a reader may see: committed ones (plus this batch's), minus pending deletions."""
        gen = int(self._state["generation"])
        hidden = set(self._state.get("journal") or [])
        expr = f"born <= {gen}"
        if self._txn is not None:
            expr = f"(born <= {gen} or born == {self._txn.gen})"
            hidden |= self._txn.deletes
        return conjoin(expr, f"pk not in {int_list(sorted(hidden))}" if hidden else "")

    # -- properties and metadata ----------------------------------------------------------------

    @property
    def dim(self) -> int:
        """Dimension of every stored vector."""
        return int(self._state["dim"])

    @property
    def generation(self) -> int:
        """Committed-write counter; any change to records or meta bumps it."""
        with self._reading():
            return int(self._state["generation"])

    @property
    def full_text(self) -> bool:
        """Whether the collection has the BM25 field that :meth:`text_search` uses."""
        return bool(self._state.get("full_text"))

    def get_meta(self) -> dict[str, str]:
        """All persisted metadata, including ``dim`` and ``generation``."""
        with self._reading():
            meta = {**self._state["meta"], **(self._txn.meta if self._txn else {})}
            return {**meta, "dim": str(self.dim), "generation": str(self._state["generation"])}

    def _write_meta(self, kv: Mapping[str, str]) -> None:
        with self.batch() as _:
            assert self._txn is not None
            self._txn.meta.update(kv)
            self._txn.changed |= bool(kv)

    # -- writes ---------------------------------------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[MilvusStore]:
        """Everything inside commits as one generation; an exception removes what it wrote.

        Takes the writer lock, if the store was given one, unless this thread holds it already
        (:meth:`writing`). Nested batches join the outermost one.
        """
        with self._locked(LOCK_WAIT, join=True), self._mutex:
            self._check_open()
            if self._txn is not None:
                yield self
                return
            if self._read_only:
                raise VectorStoreError("this store was opened read_only; open it writable to change it")
            if self._lite_path is None:
                self._load_state()  # a server may have other writers' commits since we looked
            txn = _Txn(gen=int(self._state["generation"]) + 1)
            self._txn = txn
            try:
                yield self
            except BaseException:
                self._txn = None
                self._client.delete(self.collection, filter=f"born == {txn.gen}")
                raise
            self._txn = None
            if txn.changed:
                self._commit(txn)

    def _commit(self, txn: _Txn) -> None:
        pending = sorted(txn.deletes)
        meta = {**self._state["meta"], **txn.meta}
        try:
            self._put_state({**self._state, "generation": txn.gen, "meta": meta, "journal": pending})
        except BaseException:
            self._client.delete(self.collection, filter=f"born == {txn.gen}")
            raise
        if pending:  # committed; if this fails the journal keeps them hidden until the next open
            self._delete_pks(pending)
            self._put_state({**self._state, "journal": []})
        self._unflushed += txn.added
        if self._lite_path is not None and self._unflushed >= LITE_FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        """Seal the rows written so far into indexed segments (Milvus's ``flush``)."""
        with self._mutex:
            self._check_open()
            self._client.flush(self.collection)
            self._unflushed = 0

    def write(
        self,
        *,
        delete_ids: Iterable[int] = (),
        delete_where: Mapping[str, Any] | None = None,
        add: Sequence[Record] = (),
    ) -> tuple[int, int]:
        """Delete by id and/or filter, then add, as part of one generation; ``(removed, added)``."""
        rows, matrix = prepare_records(add, self.dim)
        ids_to_delete = sorted({int(i) for i in delete_ids})
        validate_where(delete_where)
        with self.batch():
            txn = self._txn
            assert txn is not None
            victims: dict[int, int] = {}  # pk -> rid
            for start in range(0, len(ids_to_delete), IDS_PER_LOOKUP):
                chunk = ids_to_delete[start : start + IDS_PER_LOOKUP]
                victims.update((pk, rid) for pk, rid, _ in self._scan(f"rid in {int_list(chunk)}"))
            if delete_where:
                victims.update((pk, rid) for pk, rid in self._matching(delete_where))
            new_ids = [r[0] for r in rows]
            gone = set(victims.values())
            taken = [rid for rid in self._existing(new_ids) if rid not in gone]
            if taken:
                raise DuplicateIdError(f"ids already stored: {sorted(taken)[:10]}; delete or replace_where them first")
            inserted: list[int] = []
            try:
                for start in range(0, len(rows), PAGE):
                    data = [
                        self._row(rid, txn.gen, matrix[start + j], json.loads(payload))
                        for j, (rid, _, payload) in enumerate(rows[start : start + PAGE])
                    ]
                    inserted += [int(p) for p in self._client.insert(self.collection, data)["ids"]]
            except BaseException:
                self._delete_pks(inserted)
                raise
            txn.deletes |= set(victims)
            txn.changed |= bool(victims or rows)
            txn.added += len(rows)
        return len(gone), len(rows)

    def _row(self, rid: int, born: int, vector: np.ndarray, payload: dict[str, Any]) -> dict[str, Any]:
        row = {"rid": rid, "born": born, "vector": vector.tolist(), "payload": payload}
        if self.full_text:
            row["text"] = self._full_text_of(payload).encode()[:TEXT_MAX_BYTES].decode(errors="ignore")
        return row

    def _existing(self, rids: Sequence[int]) -> list[int]:
        found: list[int] = []
        for start in range(0, len(rids), IDS_PER_LOOKUP):
            found += [rid for _, rid, _ in self._scan(f"rid in {int_list(rids[start : start + IDS_PER_LOOKUP])}")]
        return found

    # -- lifecycle ------------------------------------------------------------------------------

    def _release(self) -> None:
        """Close the connection (and stop the embedded Milvus Lite server when last)."""
        lite.disconnect(self._client, self._lite_path)
