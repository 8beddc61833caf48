"""The keyword (BM25) leg of retrieval behind one small seam: our jieba BM25 kept in step with the
store, or a store's own full-text index."""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path

from vectorstore import Record, VectorStore
from vectorstore.sqlite_records import out_of_space

from ..errors import KBError
from .bm25 import BM25Index
from .payload import indexed_text

log = logging.getLogger(__name__)

BM25_FILE = "bm25.sqlite"
KEYWORD_INDEXES = ("auto", "jieba", "milvus")


class KeywordIndex(ABC):
    """``search(query, k)`` -> ``[(chunk id, BM25 score)]``, best first."""

    name: str = "keyword"

    @abstractmethod
    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """The ``k`` best keyword matches for ``query``."""

    def doc_freqs(self, terms: Sequence[str]) -> tuple[int, dict[str, int]] | None:
        """Corpus statistics for keyword coverage: ``(chunks, {term: chunks with it})``, or None when
        the index does not expose them (coverage then uses the candidates as the corpus)."""
        return None

    def terms_of(self, ids: Sequence[int], within: Sequence[str] | None = None) -> dict[int, set[str]] | None:
        """Each chunk's distinct terms (only those in ``within`` when given) if the index keeps them
        (else None: the caller tokenises)."""
        return None

    def compact(self) -> None:
        """Fold what changed since the index was last compacted into its read-optimised form
        (``kb gc``); nothing where there is none."""
        return None

    def catch_up(self) -> None:
        """Bring the index in step with the store now: a writer calls it after a commit, so the next
        search neither tokenises the new chunks nor waits for a merge (nothing where the store is
        its own index)."""
        return None

    def close(self) -> None:
        return None


def _no_space(exc: BaseException) -> bool:
    return out_of_space(exc) or (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG))


def _texts(records: Sequence[Record | None]) -> Iterator[tuple[int, str]]:
    """What the keyword index reads of the store's records: id and indexed text, missing ones skipped."""
    return ((r.id, indexed_text(r.payload)) for r in records if r is not None)


class JiebaKeywordIndex(KeywordIndex):
    """Our BM25 over jieba tokens in its own files beside any store (a numpy segment and a SQLite
    delta: ``bm25.BM25Index``), opened once and synced lazily: before a search, only the chunk ids that
    changed since the last look are tokenised."""

    name = "jieba"

    def __init__(self, path: Path, store: VectorStore) -> None:
        self.path = path
        self.store = store
        self._index: BM25Index | None = None
        self._lock = threading.Lock()

    @property
    def index(self) -> BM25Index:
        """The BM25 index, in step with the store. When its file cannot be written (a full disk), one
        kept in memory for this process instead: searches still answer, from the store's own texts."""
        with self._lock:
            try:
                index = self._opened()
                self._sync(index)
            except (sqlite3.OperationalError, OSError) as exc:  # OSError: writing a segment's files
                if not _no_space(exc) or str(self.path) == ":memory:":
                    raise
                log.warning("keyword index %s cannot be written (%s); keeping it in memory", self.path, exc)
                if self._index is not None:
                    self._index.close()
                self.path, self._index = Path(":memory:"), None
                index = self._opened()
                self._sync(index)
            return index

    def _opened(self) -> BM25Index:
        if self._index is None:
            self._index = BM25Index.open(self.path)
        return self._index

    def _sync(self, index: BM25Index) -> None:
        store = self.store
        store.refresh()
        generation = int(store.generation)
        if not index.is_stale(generation):
            return
        cursor = store.change_cursor()
        if index.built_by != index.tokenizer_id:  # built by an earlier tokenizer: every text again, once
            log.info("keyword index %s was built by tokenizer %s; rebuilding it with %s",
                     self.path, index.built_by, index.tokenizer_id)
            index.rebuild(_texts(store.get(sorted(store.ids()))), source_generation=generation, source_cursor=cursor)
            return
        # Only the ids the store's commits since our last sync touched (its change log), when it can
        # tell: the edit's cost. Else every id on both sides is compared (~1 s at 1M chunks).
        since = index.source_cursor
        changed = store.changed_ids(since) if since is not None else None
        if changed is None:
            in_store, in_index = set(store.ids()), set(index.ids())
            removed = in_index - in_store
            records = store.get(sorted(in_store - in_index))
        else:
            records = store.get(sorted(changed))
            removed = changed.difference(r.id for r in records if r is not None)
        index.apply(removed, _texts(records), source_generation=generation, source_cursor=cursor)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        return self.index.search(query, k)

    def catch_up(self) -> None:
        self.index  # noqa: B018 -- opening it syncs it (and merges a full delta)

    # Statistics for the chunks a search just returned: the index as that search synced it (a sync
    # reads the store's state, one strong read per call on a Milvus server).
    def doc_freqs(self, terms: Sequence[str]) -> tuple[int, dict[str, int]] | None:
        with self._lock:
            return self._opened().doc_freqs(terms)

    def terms_of(self, ids: Sequence[int], within: Sequence[str] | None = None) -> dict[int, set[str]] | None:
        with self._lock:
            return self._opened().terms_of(ids, within)

    def compact(self) -> None:
        """Sync, then merge the BM25 delta into a new segment; a knowledge base that never built its
        keyword index is left without one."""
        if str(self.path) != ":memory:" and not self.path.exists():
            return
        index = self.index
        with self._lock:
            index.compact()

    def close(self) -> None:
        with self._lock:
            if self._index is not None:
                self._index.close()
                self._index = None


class StoreKeywordIndex(KeywordIndex):
    """The store's own full-text search (a Milvus collection with a BM25 field, fed the same
    ``indexed_text`` as ours: see ``storage.open_kb_store``)."""

    name = "milvus"

    def __init__(self, store: VectorStore) -> None:
        self.store = store

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        return [(h.id, h.score) for h in self.store.text_search(query, k)]


def open_keyword_index(choice: str, store: VectorStore, kb_dir: Path, kb_name: str) -> KeywordIndex:
    """The keyword index ``choice`` names: ``jieba`` (ours), ``milvus`` (the store's full text) or
    ``auto``, which is ours even on a Milvus store with full text: on the same Milvus Lite store it
    found the answer as often or more often (hybrid answer-hit@1 0.945 vs 0.943 on CMRC 2018, 0.936
    vs 0.929 on DRCD; bench/bench_keyword.py), and it works the same on every store."""
    if choice not in KEYWORD_INDEXES:
        raise KBError(f"keyword_index must be one of {', '.join(KEYWORD_INDEXES)}, not {choice!r}")
    if choice == "milvus":
        if not store.full_text:
            raise KBError(
                f"knowledge base {kb_name!r} has no Milvus full-text index (its store is "
                f"{type(store).__name__}, or a collection created without it); "
                "set KB_KEYWORD_INDEX=jieba, or migrate it to Milvus 2.5+ / Milvus Lite"
            )
        return StoreKeywordIndex(store)
    return JiebaKeywordIndex(kb_dir / BM25_FILE, store)
