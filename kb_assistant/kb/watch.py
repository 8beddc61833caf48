"""``kb watch``: keep a knowledge base in step with folders as files are created, edited, moved and deleted.

A watchdog observer (inotify, FSEvents, ...) records which paths changed; after a short quiet spell (the
debounce: an editor's save is several events, a copy of many files is many) the changed paths are applied
incrementally through the knowledge base's own indexing run, so a moved file is re-pointed without
embedding and each file is swapped whole, as ``kb index`` does. A change costs the change: the run
looks up the changed paths' documents by source instead of reading every stored payload. A file still
changing when its changes are taken (rewritten without pause) is put back until its size and mtime hold
still, so it is never read half-written. Editors' temporary and lock files are never indexed. A
catch-up pass on start indexes what changed while nothing was watching.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..types import FileOutcome, IndexReport
from .storage import KBBusyError

DEBOUNCE_S = 1.0  # quiet time before changes are applied: an editor's save settles well within it
MAX_DELAY_S = 10.0  # changes are taken this long after the first even while others keep arriving
SETTLE_S = 0.25  # a file taken while its events still arrive must keep its size and mtime this long
# Editors' and office suites' temporary, backup and lock files (vim, emacs, LibreOffice, MS Office, browsers).
IGNORED_PREFIXES = ("~$", ".#", ".~lock.")
IGNORED_SUFFIXES = ("~", ".swp", ".swx", ".swo", ".tmp", ".temp", ".part", ".crdownload", ".bak")
IGNORED_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", "4913"})  # 4913: vim's write probe

LogFn = Callable[[str], None]


def ignored(path: str | Path, roots: Sequence[Path] = ()) -> bool:
    """Whether a change to ``path`` is noise: an editor's temporary or lock file, or anything hidden
    below a watched folder (``kb index`` skips hidden entries too)."""
    path = Path(path)
    name = path.name
    if name in IGNORED_NAMES or name.startswith(IGNORED_PREFIXES) or name.endswith(IGNORED_SUFFIXES):
        return True
    for root in roots:
        if path.is_relative_to(root):
            return any(part.startswith(".") for part in path.relative_to(root).parts)
    return False


def describe(outcome: FileOutcome) -> str | None:
    """The one log line for a change (None for files that did not change)."""
    if outcome.status == "unchanged":
        return None
    if outcome.status == "moved":
        return f"moved: {outcome.reason} -> {outcome.path}"
    if outcome.status in ("added", "updated", "removed"):
        return f"{outcome.status}: {outcome.path} ({outcome.chunks} chunks)"
    return f"{outcome.status}: {outcome.path}: {outcome.reason}"


Stamp = tuple[int, int]  # a file's size and modification time (ns): equal stamps, same content in practice


def stamp(path: str | Path) -> Stamp | None:
    """The size and mtime of the regular file at ``path``; None for a folder or a path now gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns) if stat.S_ISREG(st.st_mode) else None


@dataclass(frozen=True)
class Seen:
    """A queued path's last event: when (monotonic seconds), and its stamp just after."""

    at: float
    stamp: Stamp | None


class ChangeQueue:
    """Paths touched since the last apply, released once no event came for ``debounce`` seconds (or
    ``max_delay`` after the first, so that a change to one file does not wait on another rewritten
    without pause). Each path keeps the stamp it had at its last event, for the settle check."""

    def __init__(self, debounce: float = DEBOUNCE_S, max_delay: float = MAX_DELAY_S) -> None:
        self.debounce = debounce
        self.max_delay = max_delay
        self._paths: dict[str, Seen] = {}
        self._first = self._last = 0.0
        self._lock = threading.Lock()

    def add(self, *paths: str) -> None:
        stamps = {p: stamp(p) for p in paths}  # outside the lock: a stat per event is cheap, but not free
        with self._lock:
            now = time.monotonic()
            if not self._paths:
                self._first = now
            self._last = now
            self._paths.update((p, Seen(now, s)) for p, s in stamps.items())

    def take(self) -> list[str]:
        """The settled paths (emptying the queue), or [] while events are still arriving."""
        return list(self.take_seen())

    def take_seen(self) -> dict[str, Seen]:
        """As :meth:`take`, with each path's last event."""
        with self._lock:
            now = time.monotonic()
            if not self._paths or (now - self._last < self.debounce and now - self._first < self.max_delay):
                return {}
            paths, self._paths = self._paths, {}
            return paths


class FolderWatcher:
    """Applies changes under ``roots`` to the knowledge base ``kb`` (a :class:`KnowledgeBase`)."""

    def __init__(
        self, kb: Any, roots: Iterable[str | Path], *, debounce: float = DEBOUNCE_S, max_delay: float = MAX_DELAY_S,
        log: LogFn = print, wait: float = 30.0, settle: float = SETTLE_S,
    ) -> None:
        from ingest import SUPPORTED_SUFFIXES

        self.kb = kb
        self.roots = [Path(r).expanduser().resolve() for r in roots]
        self.queue = ChangeQueue(debounce, max_delay)
        self.log = log
        self.wait = wait  # seconds to wait for another writer (e.g. a `kb index` run) before retrying later
        self.settle = settle  # the look at a file still changing when its queue was released
        self.suffixes = {s.lower() for s in SUPPORTED_SUFFIXES}
        self.applied = 0  # apply passes done (tests and progress)
        self._unsettled: set[str] = set()  # files put back because they kept changing (logged once)

    def catch_up(self, progress: Any = None) -> IndexReport:
        """Index the folders as ``kb index --prune`` would (temporary files left out): what changed
        while nothing was watching."""
        report: IndexReport = self._sync(self.roots, progress, changed=False)
        self.kb.mark_synced()
        return report

    def notice(self, *paths: str, folder: bool = False) -> None:
        """Record changed paths (from the observer's thread); noise is dropped here, and so are files of
        a type never indexed (``folder``: the event was a folder's): a deleted ``build.log``, or the
        suffix-less temporary file ``sed -i`` renames over its target, would otherwise name a path gone
        that might have been a folder, which costs a pass over every document."""
        drop = ignored if folder else lambda p, roots: self._ignore(Path(p))
        wanted = [p for p in paths if p and not drop(p, self.roots)]
        if wanted:
            self.queue.add(*wanted)

    def apply(self, paths: Sequence[str]) -> None:
        """Bring the knowledge base in step for these changed paths (files, folders created or moved in,
        paths now gone): see :meth:`_sync`."""
        self._sync([Path(p) for p in paths], None, changed=True)
        self.kb.mark_synced()
        self.applied += 1

    def _sync(self, paths: Sequence[Path], progress: Any, *, changed: bool) -> IndexReport:
        """One indexing run over ``paths``, walked by ``kb index``'s own walker: new and edited files are
        indexed, a moved file is re-pointed (not re-embedded), and the documents at or under the paths
        whose files are gone or now ignored are removed. ``changed``: the run looks up only the documents
        at these paths (see ``Indexer.index``), so an edit costs the edit, not the size of the index."""
        report: IndexReport = self.kb.index_paths(paths, progress=progress, prune=True, wait=self.wait,
                                                  changed=changed, ignore=self._ignore)
        self._report(report)
        return report

    def _ignore(self, path: Path) -> bool:
        """Files the watcher leaves out: editors' temporary files, and types it cannot index."""
        return path.suffix.lower() not in self.suffixes or ignored(path, self.roots)

    def _report(self, report: IndexReport) -> None:
        for outcome in report.outcomes:
            line = describe(outcome)
            if line is not None and outcome.status != "skipped":
                self.log(line)

    def _settled(self, taken: dict[str, Seen]) -> dict[str, Stamp | None]:
        """The taken paths that are safe to read, with their stamps; the others go back to the queue.

        A file is settled when its stamp is the one it had at its last event and that event is a
        debounce old (the usual case: the queue waited for quiet). A file released while its events
        were still arriving (``max_delay``) is looked at twice, ``settle`` seconds apart; if it changed
        it is being written (a file rewritten 50 times a second would otherwise be read half-written),
        and it is put back, with one log line, until it stops."""
        now = time.monotonic()
        ready: dict[str, Stamp | None] = {}
        doubtful: dict[str, Stamp | None] = {}
        for path, seen in taken.items():
            current = stamp(path)
            if current is None or (current == seen.stamp and now - seen.at >= self.queue.debounce):
                ready[path] = current
            else:
                doubtful[path] = current
        if doubtful:
            time.sleep(self.settle)  # once for all of them: the step's wait is bounded
        busy = []
        for path, before in doubtful.items():
            current = stamp(path)
            if current is None or current == before:
                ready[path] = current
            else:
                busy.append(path)
                if path not in self._unsettled:
                    self._unsettled.add(path)
                    self.log(f"still being written: {path} (indexed once it stops changing)")
        if busy:
            self.queue.add(*busy)
        self._unsettled.difference_update(ready)
        return ready

    def step(self) -> bool:
        """Apply the settled changes, if any; True if something was applied. A busy knowledge base
        (another writer past ``wait``) keeps the changes for the next step, and so does a file that
        changed while it was being indexed (its new text is indexed once it settles)."""
        taken = self.queue.take_seen()
        ready = self._settled(taken) if taken else {}
        if not ready:
            return False
        try:
            self.apply(list(ready))
        except KBBusyError as exc:
            self.log(f"busy: {exc}; will retry")
            self.queue.add(*ready)
            return False
        changed = [p for p, before in ready.items() if before is not None and stamp(p) != before]
        if changed:
            self.queue.add(*changed)
        return True

    def run(
        self, stop: threading.Event, *, catch_up: bool = True, progress: Any = None,
        ready: Callable[[IndexReport], None] | None = None, poll: float = 0.2,
    ) -> None:
        """Watch until ``stop`` is set (or KeyboardInterrupt), applying changes as they settle.

        The observer starts before the catch-up pass, so a change made during it is applied after it;
        ``ready(report)`` is called once the pass is done (the folders are then being watched).
        """
        from watchdog.observers import Observer

        observer = Observer()
        handler = _Handler(self)
        for root in self.roots:
            observer.schedule(handler, str(root), recursive=True)
        observer.start()
        try:
            report = self.catch_up(progress) if catch_up else IndexReport()
            if ready is not None:
                ready(report)
            while not stop.is_set():
                self.step()
                stop.wait(poll)
        finally:
            observer.stop()
            observer.join(timeout=10)


def _handler_base() -> Any:
    from watchdog.events import FileSystemEventHandler

    return FileSystemEventHandler


class _Handler(_handler_base()):  # type: ignore[misc]
    """Forwards every event's paths (a move has two) to the watcher."""

    def __init__(self, watcher: FolderWatcher) -> None:
        super().__init__()
        self.watcher = watcher

    def on_any_event(self, event: Any) -> None:
        if event.event_type in ("opened", "closed_no_write") or (event.is_directory and event.event_type == "modified"):
            return  # reads, or a folder's listing changing: the files' own events say what changed
        self.watcher.notice(str(event.src_path), str(getattr(event, "dest_path", "") or ""),
                            folder=bool(event.is_directory))
