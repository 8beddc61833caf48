"""Read-ahead for indexing runs: the next files are hashed, parsed and split while the current batch embeds.

The embedder is the slow stage (the bundled one manages a few passages a second on a laptop core) and
releases the GIL while it computes; without read-ahead it sits idle while each file is read and split.
One producer thread walks the candidates in order and hands over, per file, its content hash and, when
the file will need embedding, its chunks; a bound on the chunks held ahead keeps memory flat.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .files import Candidate, file_sha256, not_a_file

ParseFn = Callable[[Candidate], list[Any] | None]
"""Parse and split one file; None when it is not to be parsed ahead (e.g. large files that are streamed)."""


@dataclass
class Prepared:
    """One candidate as the producer left it: its hash (or why it has none) and, if parsed, its chunks
    (or the exception parsing raised, re-raised where the indexer handles parse failures)."""

    candidate: Candidate
    content_hash: str | None = None
    error: BaseException | None = None  # hashing failed
    chunks: list[Any] | None = None
    parse_error: BaseException | None = None

    def take_chunks(self) -> list[Any] | None:
        """The chunks parsed ahead (raising what parsing raised), or None if it was not parsed ahead."""
        if self.parse_error is not None:
            raise self.parse_error
        return self.chunks


def read_ahead(
    candidates: Sequence[Candidate], known: Mapping[str, str], parse: ParseFn, *, max_chunks: int,
    max_files: int = 64,
) -> Generator[Prepared, None, None]:
    """``Prepared`` for each candidate, in order, computed up to ``max_files`` / ``max_chunks`` ahead.

    ``known`` (source -> content hash, as the run started) says which files are unchanged: those are
    hashed only. A file whose content is already indexed under another path (probably moved) is not
    parsed either. Closing the iterator (or an exception in the consumer) stops the producer.
    """
    indexed = set(known.values())
    ready: deque[Prepared] = deque()
    held = [0]  # chunks parsed ahead and not yet taken
    done = [False]
    stop = threading.Event()
    cond = threading.Condition()

    def produce() -> None:
        try:
            for cand in candidates:
                item = _prepare(cand, known, indexed, parse)
                size = len(item.chunks or ())
                with cond:
                    while not stop.is_set() and ready and (len(ready) >= max_files or held[0] + size > max_chunks):
                        cond.wait()
                    if stop.is_set():
                        return
                    ready.append(item)
                    held[0] += size
                    cond.notify_all()
        finally:
            with cond:
                done[0] = True
                cond.notify_all()

    worker = threading.Thread(target=produce, name="kb-read-ahead", daemon=True)
    worker.start()
    try:
        for _ in candidates:
            with cond:
                while not ready and not done[0]:
                    cond.wait()
                if not ready:
                    break  # the producer died: the rest are handled as not read ahead
                item = ready.popleft()
                held[0] -= len(item.chunks or ())
                cond.notify_all()
            yield item
    finally:
        with cond:
            stop.set()
            cond.notify_all()
        worker.join()


def _prepare(cand: Candidate, known: Mapping[str, str], indexed: set[str], parse: ParseFn) -> Prepared:
    item = Prepared(cand)
    if cand.skipped:
        return item
    try:
        if not cand.path.is_file():
            from ..errors import KBError

            raise KBError(f"cannot index {cand.path.name}: {not_a_file(cand.path)}")
        item.content_hash = file_sha256(cand.path)
    except Exception as exc:  # reported by the consumer, as before
        item.error = exc
        return item
    source = str(cand.path)
    if known.get(source) == item.content_hash or (source not in known and item.content_hash in indexed):
        return item  # unchanged, or probably moved: no parsing needed
    try:
        item.chunks = parse(cand)
    except Exception as exc:
        item.parse_error = exc
    return item
