"""The knowledge bases under a data directory: names, listing and deletion (no store is written)."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import KBError
from ..settings import Settings
from .manifest import MANIFEST_FILE, STORE_DIR, read_manifest
from .storage import busy_as, open_kb_store, store_record, writer_lock_for

_NAME_RE = re.compile(r"^[\w\-\u3400-\u9fff]{1,64}$")


@dataclass(frozen=True)
class KBSummary:
    """One row of ``kb kb list``."""

    name: str
    documents: int | None
    chunks: int | None
    embedder: str
    dim: int
    created: str
    backend: str
    problem: str = ""  # why counts are missing, e.g. an old store that needs an upgrade
    synced: str = ""  # when `kb watch` last brought it in step with its folders ("": never)


def validate_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise KBError(
            f"invalid knowledge-base name {name!r}: use 1-64 letters, digits, '_', '-' or Chinese characters"
        )
    return name


def exists(kb_dir: Path) -> bool:
    return (kb_dir / STORE_DIR).is_dir() or (kb_dir / MANIFEST_FILE).is_file()


def kb_names(settings: Settings) -> list[str]:
    root = settings.kb_root
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".") and exists(p))


def delete_kb(settings: Settings, name: str, *, wait: float = 0.0) -> None:
    """Delete a knowledge base and everything in its directory; refuses while it is being written."""
    path = settings.kb_root / validate_name(name)
    if not exists(path):
        raise KBError(f"no knowledge base named {name!r} (see `kb list`)")
    lock = writer_lock_for(path)
    with busy_as(name):
        lock.acquire(wait)
    try:
        # Renamed first, so a crash part-way leaves a hidden leftover, never a half knowledge base.
        doomed = path.with_name(f".{name}.deleting-{os.getpid()}")
        path.rename(doomed)
    finally:
        lock.release()
    shutil.rmtree(doomed)


def kb_summaries(settings: Settings) -> list[KBSummary]:
    """Name, documents, chunks, embedder and creation time of every knowledge base (read-only)."""
    from vectorstore import VectorStoreError

    rows = []
    for name in kb_names(settings):
        kb_dir = settings.kb_root / name
        manifest = read_manifest(kb_dir)
        record = store_record(kb_dir, manifest, new_backend=settings.store, new_uri=settings.store_uri)
        docs = chunks = None
        problem = ""
        meta: dict[str, str] = {}
        try:
            with open_kb_store(kb_dir, record, token=settings.store_token, read_only=True) as store:
                meta = store.get_meta()
                docs, chunks = len({p["source"] for _, p in store.payloads()}), store.count()
        except (VectorStoreError, OSError) as exc:
            problem = str(exc)
        rows.append(KBSummary(
            name, docs, chunks,
            manifest.embedder_id if manifest else meta.get("embedder_id", "?"),
            manifest.embedder_dim if manifest else int(meta.get("embedder_dim", 0) or 0),
            manifest.created if manifest else meta.get("created_at", ""), record.backend, problem,
            (manifest.synced or "") if manifest else "",
        ))
    return rows
