"""Indexing in a background thread, so the page stays responsive and shows live progress."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import KBError
from ..types import IndexReport


@dataclass
class IndexJob:
    """One run over some files; the page polls ``done``/``total``/``current`` and reads ``report``."""

    kb_name: str
    total: int = 0
    done: int = 0
    current: str = ""
    refused: list[str] = field(default_factory=list)
    report: IndexReport | None = None
    error: str = ""
    started: float = field(default_factory=time.time)
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def running(self) -> bool:
        return not self.finished.is_set()

    def progress(self, done: int, total: int, current: str) -> None:
        self.done, self.total, self.current = done, total, current


def start_index_job(kb: Any, files: list[tuple[str, bytes]], settings: Any,
                    on_done: Callable[[IndexJob], None] | None = None) -> IndexJob:
    """Save uploads safely and index them in a daemon thread; returns the job to poll.

    ``on_done(job)`` runs in the thread when it ends (the app records the run: time, failed files)."""
    from ..uploads import index_uploads

    job = IndexJob(kb.name, total=len(files))

    def work() -> None:
        try:
            job.report, job.refused = index_uploads(kb, files, settings, progress=job.progress)
        except KBError as exc:
            job.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - shown to the user instead of killing the thread silently
            job.error = f"indexing stopped: {type(exc).__name__}: {exc}"
        finally:
            if on_done is not None:
                try:
                    on_done(job)
                except Exception as exc:  # noqa: BLE001 - the report stays on the page even if not recorded
                    job.error = job.error or f"the run was not recorded: {exc}"
            job.finished.set()

    threading.Thread(target=work, name=f"index-{kb.name}", daemon=True).start()
    return job
