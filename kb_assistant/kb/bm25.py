"""A persistent, incrementally updated Okapi BM25 index: an immutable numpy segment plus a SQLite delta.

This module owns the file: opening, transactions, the segment's lifecycle and every write (tokenising,
the delta, merges); the read side is ``bm25_query.py``."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from ..tokenize import TOKENIZER_ID, tokenize
from . import bm25_delta as delta
from . import bm25_query
from .bm25_delta import batches
from .bm25_schema import BM25IndexError, migrate
from .bm25_segment import Builder, Segment, SegmentError, drop_folder, merge, remove_folders
from .fusion import reciprocal_rank_fusion

__all__ = ["BM25Index", "BM25IndexError", "reciprocal_rank_fusion"]
log = logging.getLogger(__name__)

_MAX_ID = 2**63 - 1
# Documents the SQLite delta holds (added, or removed from the segment) before they are merged into a
# new segment. The delta is scored by SQL, whose cost grows with its postings (63 ms p50 for 100k chunks
# all in SQLite, bench_scale.py), so a few thousand add a few ms at most; a merge rewrites the segment
# (measured per size in bench_scale.py), so this also bounds how often that runs: every ~250 edited files.
DELTA_MAX = 5_000

Tokenizer = Callable[[str], list[str]]


def _check_id(rid: object) -> int:
    if isinstance(rid, bool) or not hasattr(rid, "__index__"):
        raise ValueError(f"chunk ids must be integers in [0, 2**63); got {rid!r}")
    value = int(rid)  # type: ignore[call-overload]  # numpy integers have __index__
    if not 0 <= value <= _MAX_ID:
        raise ValueError(f"chunk ids must be integers in [0, 2**63); got {rid!r}")
    return value


class BM25Index:
    """Okapi BM25 over chunk texts, kept beside the knowledge base and updated with it.

    Most documents live in a segment (``bm25_segment``: arrays, memory-mapped, scored in numpy); the
    SQLite file holds the meta, the corpus stats, the delta (documents added since, and the segment's
    documents removed since: ``dead``) and the name of the segment's folder. Every write is one
    transaction (WAL, fsync per commit); a merge writes its new folder first and names it in that
    commit, so a crash or an exception leaves the previous state. ``generation`` counts committed
    writes; ``source_generation`` is whatever the caller passed with its last write (the vector
    store's), so ``is_stale(store.generation)`` tells when to ``rebuild`` from the store.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, *, k1: float, b: float, tokenizer: Tokenizer,
                 tokenizer_id: str, delta_max: int) -> None:
        self._conn = conn
        self.path = path
        self.k1 = k1
        self.b = b
        self._tokenize = tokenizer
        self.tokenizer_id = tokenizer_id
        self.delta_max = delta_max
        self._lock = threading.RLock()
        self._segment = Segment.empty()
        self._alive = np.zeros(0, bool)
        self._alive_at: int | None = None  # the generation ``_alive`` was read at

    @classmethod
    def open(cls, path: str | Path, *, k1: float = 1.5, b: float = 0.75, tokenizer: Tokenizer = tokenize,
             tokenizer_id: str = TOKENIZER_ID, delta_max: int | None = None) -> BM25Index:
        """Open or create the index file at ``path`` (its folder must exist).

        ``k1`` and ``b`` apply at query time only, so they may change between opens; the tokenizer may not:
        an index built by another tokenizer reports ``is_stale`` until rebuilt. A segment that cannot be
        read empties the index (one warning): it is derived data, rebuilt from the store at the next sync.
        """
        path = Path(path)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA cache_size=-65536")  # 64 MiB: bulk adds touch postings pages all over
            migrate(conn)
            index = cls(conn, path, k1=k1, b=b, tokenizer=tokenizer, tokenizer_id=tokenizer_id,
                        delta_max=DELTA_MAX if delta_max is None else delta_max)
            try:
                index._refresh()
            except SegmentError:
                index._reset_if_unreadable()
            if index._meta("tokenizer") is None:
                with index._write():
                    index._set_meta("tokenizer", tokenizer_id)
            if index._delta_size() > index.delta_max:  # a version-2 file: all its documents in the delta
                log.info("keyword index %s: moving %d documents into a segment (once)", path, index._delta_size())
                index.compact()
            if index._on_disk and any(p.name != index._segment.name for p in index._folders()):
                with index._write():
                    remove_folders(path.parent, f"{path.name}.seg-", index._segment.name)
        except BaseException:
            conn.close()
            raise
        return index

    def _reset_if_unreadable(self) -> None:
        """Under the writer lock (no merge can replace the segment meanwhile: the one just missed may
        have been), load it again; if it still cannot be read, empty the index for a rebuild."""
        with self._write(refresh=False):
            try:
                self._refresh()
            except SegmentError as exc:
                log.warning("keyword index %s: its segment cannot be read (%s); it is rebuilt from the store",
                            self.path, exc)
                self._clear()
                self._conn.execute("DELETE FROM meta WHERE key IN ('source_generation', 'source_cursor')")
                self._finish(None)

    def close(self) -> None:
        """Close the file; the index is unusable afterwards."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> BM25Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- metadata and the segment ----------------------------------------------------------------

    @property
    def _on_disk(self) -> bool:
        return str(self.path) != ":memory:"

    def _folders(self) -> list[Path]:
        return [p for p in self.path.parent.glob(f"{self.path.name}.seg-*") if p.is_dir()]

    def _meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def _set_meta(self, key: str, value: str) -> None:
        self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def _refresh(self) -> None:
        """Load the segment the file names and which of its documents are alive, if either changed
        (another process may have written); call inside a transaction."""
        name = self._meta("segment") or ""
        if name != self._segment.name:
            if not name.startswith(f"{self.path.name}.seg-"):
                raise SegmentError(f"the segment is held by another process's memory ({name})")
            self._segment = Segment.load(self.path.parent / name)
            self._alive_at = None
        generation = int(self._meta("generation") or 0)
        if generation != self._alive_at:
            alive = np.ones(self._segment.n, bool)
            dead = [r for (r,) in self._conn.execute("SELECT id FROM dead")]
            pos = self._segment.positions(dead) if dead else np.zeros(0, np.int64)
            alive[pos[pos >= 0]] = False
            self._alive, self._alive_at = alive, generation

    @property
    def generation(self) -> int:
        """How many writes have been committed to this file."""
        with self._lock:
            return int(self._meta("generation") or 0)

    @property
    def source_generation(self) -> int | None:
        """The source generation recorded by the last write that passed one (None if never)."""
        with self._lock:
            value = self._meta("source_generation")
        return None if value is None else int(value)

    @property
    def source_cursor(self) -> str | None:
        """The source's change cursor passed with the last write, if that write passed one: where the
        next sync may ask the source for only what changed since (``VectorStore.changed_ids``)."""
        with self._lock:
            return self._meta("source_cursor") if self.built_by == self.tokenizer_id else None

    @property
    def built_by(self) -> str | None:
        """The id of the tokenizer that built this index: ``tokenizer_id`` unless another built it,
        in which case only a ``rebuild`` makes its terms match the queries' again."""
        with self._lock:
            return self._meta("tokenizer")

    def is_stale(self, source_generation: int) -> bool:
        """True unless this index was built by our tokenizer and last written at ``source_generation``."""
        return self.built_by != self.tokenizer_id or self.source_generation != int(source_generation)

    def count(self) -> int:
        """Documents indexed (empty texts included)."""
        with self._lock:
            return int(self._conn.execute("SELECT n FROM stats").fetchone()[0])

    def ids(self) -> list[int]:
        """Every indexed chunk id, ascending."""
        with self._lock, self._reading():
            seg = np.asarray(self._segment.a["doc_ids"])[self._alive]
            delta = np.fromiter((r for (r,) in self._conn.execute("SELECT id FROM docs")), dtype=np.int64)
            return np.sort(np.concatenate([seg, delta])).tolist()

    # -- writes ----------------------------------------------------------------------------------

    def _write(self, *, refresh: bool = True) -> delta.Transaction:
        return delta.Transaction(self, "BEGIN IMMEDIATE", refresh=refresh)

    def _reading(self) -> delta.Transaction:
        """One snapshot for stats, delta and segment name, whoever else is writing."""
        return delta.Transaction(self, "BEGIN")

    def add(self, items: Iterable[tuple[int, str]], *, source_generation: int | None = None,
            source_cursor: str | None = None) -> int:
        """Index ``(chunk id, text)`` pairs in one transaction; ids already indexed are replaced.

        Returns how many were added. Tokenising happens inside the transaction (the writer lock is
        held meanwhile; WAL readers are not blocked), so an iterable that raises midway adds nothing.
        ``source_cursor`` is recorded with ``source_generation`` (a write without one forgets it).
        """
        return self.apply((), items, source_generation=source_generation, source_cursor=source_cursor)

    def apply(self, removed: Iterable[int], items: Iterable[tuple[int, str]], *,
              source_generation: int | None = None, source_cursor: str | None = None) -> int:
        """Drop ``removed`` and index ``items`` (as ``add``) in one transaction: a sync commits once
        (each commit fsyncs and checkpoints; two took 0.2 s for a 20-chunk edit, bench_scale.py).
        More new documents than the delta has room for go straight into a merged segment."""
        with self._write():
            self._remove([_check_id(i) for i in removed])
            added = self._add(items)
            if self._delta_size() > self.delta_max:
                self._merge(Builder())
            self._finish(source_generation, source_cursor)
        return added

    def remove(self, ids: Iterable[int], *, source_generation: int | None = None) -> int:
        """Drop chunk ids in one transaction (unknown ids are ignored); returns how many were indexed."""
        with self._write():
            removed = self._remove([_check_id(i) for i in ids])
            if self._delta_size() > self.delta_max:
                self._merge(Builder())
            self._finish(source_generation)
        return removed

    def rebuild(self, items: Iterable[tuple[int, str]], *, source_generation: int | None = None,
                source_cursor: str | None = None) -> int:
        """Replace the whole index with ``items`` atomically (and adopt the current tokenizer): one
        segment, written in one pass."""
        with self._write():
            self._clear()
            builder = Builder()
            self._tokenized(items, builder.add)
            self._count(builder)
            self._merge(builder)
            self._set_meta("tokenizer", self.tokenizer_id)
            self._finish(source_generation, source_cursor)
        return len(builder)

    def compact(self) -> None:
        """Merge the delta into a new segment now (``kb gc``), if it holds anything."""
        with self._write():
            if self._delta_size():
                self._merge(Builder())
                self._finish(None)

    def _clear(self) -> None:
        delta.clear(self._conn)
        self._conn.execute("UPDATE stats SET n = 0, total_length = 0")
        self._conn.execute("DELETE FROM meta WHERE key = 'segment'")
        self._segment, self._alive = Segment.empty(), np.zeros(0, bool)

    def _finish(self, source_generation: int | None, source_cursor: str | None = None) -> None:
        generation = int(self._meta("generation") or 0) + 1
        self._set_meta("generation", str(generation))
        self._alive_at = generation  # ``_alive`` was kept up to date by this write
        if source_generation is not None:
            self._set_meta("source_generation", str(int(source_generation)))
            if source_cursor is None:
                self._conn.execute("DELETE FROM meta WHERE key = 'source_cursor'")
            else:
                self._set_meta("source_cursor", source_cursor)

    def _delta_size(self) -> int:
        """Documents in the delta: added since the segment, or removed from it."""
        n = int(self._conn.execute("SELECT n FROM stats").fetchone()[0])
        live = int(self._alive.sum())
        return n - live + (self._segment.n - live)

    def _tokenized(self, items: Iterable[tuple[int, str]], sink: Callable[[int, list[tuple[str, int]], int], None]
                   ) -> None:
        seen: set[int] = set()
        for rid, text in items:
            rid = _check_id(rid)
            if rid in seen:
                raise ValueError(f"chunk id {rid} appears twice in one add; ids must be unique")
            seen.add(rid)
            terms = self._tokenize(text)
            sink(rid, sorted(Counter(terms).items()), len(terms))

    def _add(self, items: Iterable[tuple[int, str]]) -> int:
        """Into the delta while it has room, else (a bulk add) every new document into a new segment."""
        room = max(0, self.delta_max - self._delta_size())
        pending: list[tuple[int, list[tuple[str, int]], int]] = []
        builder: Builder | None = None

        def sink(rid: int, tfs: list[tuple[str, int]], length: int) -> None:
            nonlocal builder
            if builder is not None:
                builder.add(rid, tfs, length)
                return
            pending.append((rid, tfs, length))
            if len(pending) > room:
                builder = Builder()
                for doc in pending:
                    builder.add(*doc)
                pending.clear()

        self._tokenized(items, sink)
        if builder is not None:
            ids = np.frombuffer(builder.ids, dtype=np.int64).tolist()
            self._remove(ids)
            self._count(builder)
            self._merge(builder)
            return len(ids)
        for batch in batches(pending):
            self._remove([rid for rid, _, _ in batch])
            delta.insert(self._conn, batch)
        return len(pending)

    def _count(self, builder: Builder) -> None:
        total = int(np.frombuffer(builder.lengths, dtype=np.int64).sum()) if len(builder) else 0
        self._conn.execute("UPDATE stats SET n = n + ?, total_length = total_length + ?", (len(builder), total))

    def _remove(self, ids: Sequence[int]) -> int:
        """Drop ids from the delta, and mark the segment's copies dead (their terms leave ``terms.df``)."""
        return delta.remove(self._conn, self._segment, self._alive, ids)

    def _merge(self, builder: Builder) -> None:
        """The segment's live documents, the delta's and ``builder``'s into a new segment, named in this
        transaction; the delta is emptied. Its folder is written before the commit names it."""
        delta.read_into(self._conn, builder)
        new = merge(self._segment, self._alive, builder)
        generation = int(self._meta("generation") or 0) + 1
        new.name = f"{self.path.name}.seg-{generation}" if self._on_disk else f"memory-{generation}"
        if self._on_disk:
            folder = self.path.parent / new.name
            try:
                new.save(folder)
                new = Segment.load(folder)
            except BaseException:
                drop_folder(folder)
                raise
        delta.clear(self._conn)
        self._set_meta("segment", new.name)
        self._segment, self._alive = new, np.ones(new.n, bool)

    # -- queries (bm25_query: a snapshot is all they need) -------------------------------------

    def search(self, query: str, k: int = 10) -> list[tuple[int, float]]:
        """The ``k`` best ``(chunk id, score)`` for ``query``, best first (ties by ascending id).

        Okapi BM25 with the Lucene IDF ``ln(1 + (N - df + 0.5) / (df + 0.5))`` (never negative); each
        distinct query term counts once. The segment's best and the delta's best are merged; a
        document's shares are summed in the terms' sorted order on both sides, so equal documents
        score equal wherever they live.
        """
        terms = sorted(set(self._tokenize(query)))
        if k <= 0 or not terms:
            return []
        with self._lock, self._reading():
            return bm25_query.search(self._conn, self._segment, self._alive, terms, k,
                                     k1=float(self.k1), b=float(self.b))

    def doc_freqs(self, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        """``(chunks in the index, {term: chunks containing it})`` for the given terms (absent: 0)."""
        with self._lock, self._reading():
            return bm25_query.doc_freqs(self._conn, self._segment, sorted(set(terms)))

    def terms_of(self, ids: Iterable[int], within: Sequence[str] | None = None) -> dict[int, set[str]]:
        """The distinct terms of each indexed chunk (read from the postings, not re-tokenised). With
        ``within``, only those among these terms, every indexed chunk still listed: a question's keyword
        coverage needs only its own terms, |ids| x |terms| lookups instead of every term of every
        chunk (60 candidates: 0.8 ms instead of 9 at 10k chunks)."""
        wanted = [_check_id(i) for i in ids]
        with self._lock, self._reading():
            return bm25_query.terms_of(self._conn, self._segment, self._alive, wanted, within)
