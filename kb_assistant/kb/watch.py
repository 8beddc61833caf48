"""``kb watch``: keep a knowledge base in step with folders as files are created, edited, moved and deleted.

A watchdog observer (inotify, FSEvents, ...) records which paths changed; after a short quiet spell (the
debounce: an editor's save is several events, a copy of many files is many) the changed paths are applied
incrementally through the knowledge base's own indexing run, so a moved file is re-pointed without
embedding and each file is swapped whole, as ``kb index`` does. Editors' temporary and lock files are
never indexed. A catch-up pass on start indexes what changed while nothing was watching.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ..types import FileOutcome, IndexReport
from .storage import KBBusyError

DEBOUNCE_S = 1.0  # quiet time before changes are applied: an editor's save settles well within it
MAX_DELAY_S = 10.0  # a file rewritten without pause is still applied this often
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


class ChangeQueue:
    """Paths touched since the last apply, released once no event came for ``debounce`` seconds (or
    ``max_delay`` after the first, so a file rewritten without pause still gets indexed)."""

    def __init__(self, debounce: float = DEBOUNCE_S, max_delay: float = MAX_DELAY_S) -> None:
        self.debounce = debounce
        self.max_delay = max_delay
        self._paths: dict[str, None] = {}
        self._first = self._last = 0.0
        self._lock = threading.Lock()

    def add(self, *paths: str) -> None:
        with self._lock:
            now = time.monotonic()
            if not self._paths:
                self._first = now
            self._last = now
            self._paths.update(dict.fromkeys(paths))

    def take(self) -> list[str]:
        """The settled paths (emptying the queue), or [] while events are still arriving."""
        with self._lock:
            now = time.monotonic()
            if not self._paths or (now - self._last < self.debounce and now - self._first < self.max_delay):
                return []
            paths, self._paths = list(self._paths), {}
            return paths


class FolderWatcher:
    """Applies changes under ``roots`` to the knowledge base ``kb`` (a :class:`KnowledgeBase`)."""

    def __init__(
        self, kb: Any, roots: Iterable[str | Path], *, debounce: float = DEBOUNCE_S, max_delay: float = MAX_DELAY_S,
        log: LogFn = print, wait: float = 30.0,
    ) -> None:
        from ingest import SUPPORTED_SUFFIXES

        self.kb = kb
        self.roots = [Path(r).expanduser().resolve() for r in roots]
        self.queue = ChangeQueue(debounce, max_delay)
        self.log = log
        self.wait = wait  # seconds to wait for another writer (e.g. a `kb index` run) before retrying later
        self.suffixes = {s.lower() for s in SUPPORTED_SUFFIXES}
        self.applied = 0  # apply passes done (tests and progress)

    def catch_up(self, progress: Any = None) -> IndexReport:
        """Index the folders as ``kb index --prune`` would (temporary files left out): what changed
        while nothing was watching."""
        report: IndexReport = self._sync(self.roots, progress)
        self.kb.mark_synced()
        return report

    def notice(self, *paths: str) -> None:
        """Record changed paths (from the observer's thread); noise is dropped here."""
        wanted = [p for p in paths if p and not ignored(p, self.roots)]
        if wanted:
            self.queue.add(*wanted)

    def apply(self, paths: Sequence[str]) -> None:
        """Bring the knowledge base in step for these changed paths (files, or folders created or moved
        in): see :meth:`_sync`."""
        self._sync([Path(p) for p in paths], None)
        self.kb.mark_synced()
        self.applied += 1

    def _sync(self, paths: Sequence[Path], progress: Any) -> IndexReport:
        """Index the files at or under ``paths`` (a moved file is re-pointed, not re-embedded), then
        remove the indexed documents at or under them whose files are gone or now ignored."""
        files = [str(f) for p in paths for f in self._files(p)]
        report = IndexReport()
        if files:
            report = self.kb.index_paths(files, progress=progress, wait=self.wait)
            self._report(report)
        wanted = set(files)
        doomed = [s for s in self.kb.documents_matching(paths) if s not in wanted and not self._indexable(Path(s))]
        if doomed:
            removed = self.kb.remove(doomed, wait=self.wait)
            self._report(removed)
            report.outcomes += removed.outcomes
        return report

    def _files(self, path: Path) -> list[Path]:
        """The indexable files at or under ``path`` (none when it is gone)."""
        if path.is_dir():
            return sorted(f for f in path.rglob("*") if self._indexable(f))
        return [path] if self._indexable(path) else []

    def _indexable(self, path: Path) -> bool:
        return path.suffix.lower() in self.suffixes and not ignored(path, self.roots) and path.is_file()

    def _report(self, report: IndexReport) -> None:
        for outcome in report.outcomes:
            line = describe(outcome)
            if line is not None and outcome.status != "skipped":
                self.log(line)

    def step(self) -> bool:
        """Apply the settled changes, if any; True if something was applied. A busy knowledge base
        (another writer past ``wait``) keeps the changes for the next step."""
        paths = self.queue.take()
        if not paths:
            return False
        try:
            self.apply(paths)
        except KBBusyError as exc:
            self.log(f"busy: {exc}; will retry")
            self.queue.add(*paths)
            return False
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
        self.watcher.notice(str(event.src_path), str(getattr(event, "dest_path", "") or ""))
