"""Background indexing jobs for uploaded files: one thread per job, one job at a time per knowledge base,
a per-file outcome for every file the client sent (refused ones included)."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import user_message
from ..kb import KnowledgeBase

KEEP_JOBS = 500  # finished jobs remembered (oldest forgotten first)


@dataclass
class FileResult:
    """One uploaded file: ``queued`` until its job runs, then the indexer's status (added, updated,
    unchanged, failed ...), or ``refused`` at upload (unsupported type, too large)."""

    name: str
    status: str = "queued"
    chunks: int = 0
    reason: str = ""


@dataclass
class Job:
    id: str
    kb: str
    files: list[FileResult]
    state: str = "queued"  # queued | running | done | failed
    error: str = ""
    created: float = field(default_factory=time.time)
    finished: float | None = None
    done_files: int = 0

    def to_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for f in self.files:
            counts[f.status] = counts.get(f.status, 0) + 1
        return {"id": self.id, "object": "kb.job", "kb": self.kb, "state": self.state, "error": self.error or None,
                "progress": {"done": self.done_files, "total": sum(f.status != "refused" for f in self.files)},
                "counts": counts, "files": [vars(f) for f in self.files],
                "created": int(self.created), "finished": int(self.finished) if self.finished else None}


class Jobs:
    """The jobs of one server process, kept in memory."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._kb_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def active(self, kb: str) -> bool:
        with self._lock:
            return any(j.kb == kb and j.state in ("queued", "running") for j in self._jobs.values())

    def start(self, kb: KnowledgeBase, saved: list[tuple[str, Path]], refused: list[tuple[str, str]]) -> Job:
        """Index ``saved`` (client name, stored path) in a thread; ``refused`` are reported as such."""
        files = [FileResult(name) for name, _ in saved] + [FileResult(n, "refused", reason=r) for n, r in refused]
        job = Job(uuid.uuid4().hex[:16], kb.name, files)
        with self._lock:
            self._jobs[job.id] = job
            lock = self._kb_locks.setdefault(kb.name, threading.Lock())
            finished = [j for j in self._jobs.values() if j.finished]
            for old in sorted(finished, key=lambda j: j.created)[:max(0, len(self._jobs) - KEEP_JOBS)]:
                del self._jobs[old.id]
        threading.Thread(target=self._run, args=(job, kb, saved, lock), name=f"kb-job-{job.id}",
                         daemon=True).start()
        return job

    def _run(self, job: Job, kb: KnowledgeBase, saved: list[tuple[str, Path]], lock: threading.Lock) -> None:
        by_path = {str(path.resolve()): result for (_, path), result in zip(saved, job.files, strict=False)}

        def progress(done: int, total: int, current: str) -> None:
            job.done_files = done

        try:
            with lock:  # one writer per knowledge base in this process; other processes: the kb's own lock
                job.state = "running"
                if saved:
                    report = kb.index_paths([p for _, p in saved], progress=progress)
                    for outcome in report.outcomes:
                        result = by_path.get(str(Path(outcome.path).resolve()))
                        if result is not None:
                            result.status, result.chunks, result.reason = outcome.status, outcome.chunks, outcome.reason
                job.done_files = len(saved)
                job.state = "done"
        except Exception as exc:  # noqa: BLE001 - reported in the job, the server stays up
            job.error = user_message(exc) or f"indexing stopped: {type(exc).__name__}: {exc}"
            job.state = "failed"
            for result in job.files:
                if result.status == "queued":
                    result.status, result.reason = "failed", job.error
        finally:
            job.finished = time.time()
