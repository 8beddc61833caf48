"""What the knowledge-base page says about a knowledge base: its documents, whether their files are
still there, and when it was last indexed and synced."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .store import IndexRun


def document_rows(docs: Sequence[Any]) -> list[dict[str, Any]]:
    """One table row per document; a file deleted or moved since indexing says so (its chunks stay)."""
    return [{"document": Path(d.source).name, "pages": d.pages or None, "chunks": d.chunks,
             "on disk": "yes" if Path(d.source).is_file() else "missing: re-index with prune to drop it",
             # the file is unreadable now: its older indexed text still answers
             "stale": f"{d.stale} (re-index with prune to drop it)" if getattr(d, "stale", "") else None,
             "path": d.source} for d in docs]


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def _stamp(recorded: str) -> float:
    """Seconds since the epoch of a manifest time (``2026-12-01T12:30:00…``, local time)."""
    return time.mktime(time.strptime(recorded[:19], "%Y-%m-%dT%H:%M:%S"))


def last_synced(kb: Any) -> str:
    """`` · last synced 2026-12-01 12:30`` when ``kb watch`` keeps the knowledge base in step, else ""."""
    synced = kb.manifest.synced
    if not synced:
        return ""
    return f" · last synced {_when(_stamp(synced))}"


def last_indexed(kb: Any, run: IndexRun | None) -> str:
    """``last indexed 2026-12-01 12:30`` from the app's own record of its latest run, or from the
    knowledge base's manifest, which every door's indexing run updates (whichever is later)."""
    recorded = kb.manifest.indexed
    changed = _stamp(recorded) if recorded else 0.0
    if run is not None and run.finished >= changed - 5:
        return f"last indexed {_when(run.finished)}"
    if changed:
        return f"last indexed {_when(changed)}"
    return "never indexed"
