"""The FAISS index's on-disk cache as one object: the ``index.faiss`` snapshot, its sidecar and its change
log, and how far they reach. The store decides when to persist; this decides how."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from . import faiss_index as fx
from . import faiss_log, faiss_snapshot

log = logging.getLogger(__name__)

# The change log is folded into a new snapshot once it outgrows this share of the snapshot (and the
# floor below): each vector is then rewritten about 1 + 1/ratio times over the store's life, however
# large it grows, and opening replays at most ratio x the snapshot. 0 writes a snapshot every commit.
DEFAULT_COMPACT_RATIO = 0.5
COMPACT_MIN_BYTES = 8 << 20


class DiskCache:
    """What is on disk for one store directory, as far as this process knows (the caller holds the
    writer lock for every write, and a read transaction for loads)."""

    def __init__(self, directory: Path, dim: int, spec: fx.IndexSpec, compact_ratio: float) -> None:
        self.directory = directory
        self.dim = dim
        self.spec = spec
        self.compact_ratio = compact_ratio
        self.generation: int | None = None  # the committed generation the files reach
        self.log: faiss_log.LogPosition | None = None  # where their log ends (None: no log to append to)
        self.sha: str | None = None  # digest of index.faiss while it equals the in-memory index

    def load(self, generation: int, count: int) -> Any:
        """The index at ``generation`` from the snapshot and its log, or None (then rebuild)."""
        loaded = faiss_snapshot.load_cache(self.directory, generation, self.dim, self.spec, count)
        if loaded is None:  # the files are unusable: nothing on disk can be relied on or appended to
            self.sha, self.log, self.generation = None, None, None
            return None
        self.sha, self.log, self.generation = loaded.sha256, loaded.log, generation
        return loaded.index

    def catch_up(self, index: Any, current: int, generation: int, count: int) -> bool:
        """Bring ``index`` (at generation ``current``) to ``generation`` by replaying only the log records
        written since, as a reader following a writer does; False (``index`` then unusable) when the
        log does not lead there, e.g. a new snapshot was written meanwhile: load afresh."""
        if self.log is None or current >= generation:
            return False
        position = faiss_log.replay(self.directory, self.log.token, index, current, generation, self.dim)
        if position is None or int(index.ntotal) != count or fx.needs_rebuild(index, self.spec):
            return False
        self.log, self.generation, self.sha = position, generation, None
        return True

    def append(self, index: Any, base: int | None, generation: int, ops: list[faiss_log.Op]) -> bool:
        """Persist one commit as a log record; False when a snapshot must be written instead.

        Only when the files reach ``base`` and the log has room; the record is appended after the
        SQLite commit, so a crash in between leaves a log that stops short: a rebuild.
        """
        if ops:
            self.sha = None  # the vectors changed: index.faiss no longer equals the index
        position = self.log
        if position is None or self.compact_ratio <= 0 or base is None or self.generation != base:
            return False
        record = faiss_log.encode(base, generation, self.dim, ops)
        snapshot_bytes = int(index.ntotal) * (4 * self.dim + 8)  # about what index.faiss holds
        if position.end + len(record) > max(COMPACT_MIN_BYTES, self.compact_ratio * snapshot_bytes):
            return False
        try:
            if not faiss_log.append(self.directory, position, record):
                return False  # another process wrote a snapshot since: write our own
        except OSError as exc:
            log.warning("could not append to the FAISS index log in %s: %s", self.directory, exc)
            self.log = None
            return False
        self.generation = generation
        return True

    def save(self, index: Any, generation: int) -> None:
        """Write ``index`` as the snapshot for ``generation``, with an empty log; a failure (e.g. a full
        disk) is logged: the data is committed in SQLite, a missing cache only costs a rebuild."""
        token = faiss_log.new_token() if self.compact_ratio > 0 else ""
        self.log = None
        try:
            self.sha = faiss_snapshot.save_cache(self.directory, index, generation, sha256=self.sha, log=token)
            self.generation = generation
            if token:
                self.log = faiss_log.reset(self.directory, token)
        except OSError as exc:
            log.warning("could not save the FAISS index cache in %s: %s", self.directory, exc)

    def cursor(self, generation: int | None) -> str | None:
        """``token:generation`` of the log while the files reach ``generation``: the log's random token
        names its lineage, so a cursor never reads another snapshot's (or another store's) log."""
        if self.log is None or generation is None or self.generation != generation:
            return None
        return f"{self.log.token}:{generation}"

    def touched(self, cursor: str, generation: int | None) -> set[int] | None:
        """Ids deleted or added after ``cursor`` up to ``generation``, from the log; None when the log
        does not reach back to it."""
        token, _, since = cursor.partition(":")
        if self.cursor(generation) is None or self.log is None or token != self.log.token or not since.isdigit():
            return None
        return faiss_log.touched(self.directory, token, int(since), int(generation or 0))

    def lags(self, generation: int | None) -> bool:
        """Whether the files do not reach ``generation``."""
        return self.generation != generation

    @property
    def has_log(self) -> bool:
        """Whether opening would replay anything (or the log's state is unknown)."""
        return self.log is None or self.log.end > faiss_log.HEADER_LEN
