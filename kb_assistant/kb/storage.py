"""Opening a knowledge base's vector store from its manifest's store record (or, for knowledge bases
older than manifests, from what their store directory holds)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vectorstore import VectorStore

from ..errors import KBError
from .manifest import STORE_DIR, Manifest, StoreRecord, legacy_milvus_location

LOCK_FILE = "kb.lock"  # the one writer lock of a knowledge base (indexing, removal, deletion)


class KBBusyError(KBError):
    """Another process is changing this knowledge base."""


@contextmanager
def busy_as(name: str) -> Iterator[None]:
    """Turn the store's lock refusal (another writer holds it) into ``KBBusyError`` naming the kb."""
    from vectorstore import StoreLockedError

    try:
        yield
    except StoreLockedError as exc:
        raise KBBusyError(f"knowledge base {name!r} is busy: {exc}") from None


def writer_lock_for(kb_dir: Path) -> Any:
    """The knowledge base's writer lock object (shared with its store, so both take the same lock)."""
    from vectorstore.lock import WriterLock

    return WriterLock(kb_dir / LOCK_FILE)


def store_record(kb_dir: Path, manifest: Manifest | None, *, new_backend: str, new_uri: str | None) -> StoreRecord:
    """Where the store lives: the manifest's record; for a knowledge base without one, its legacy
    ``milvus.json`` or a FAISS store; for a new knowledge base, what the settings ask for."""
    if manifest is not None:
        return manifest.store
    legacy = legacy_milvus_location(kb_dir)
    if legacy is not None:
        return legacy
    if (kb_dir / STORE_DIR / "store.sqlite").exists():
        return StoreRecord("faiss")
    return StoreRecord(new_backend, new_uri if new_backend == "milvus" else None)


def open_kb_store(
    kb_dir: Path, record: StoreRecord, *, dim: int | None = None, token: str | None = None,
    read_only: bool = False, writer_lock: Any = None,
) -> VectorStore:
    """Open the store the record names. Milvus gets its location and token, and its own BM25 field
    at creation where the server has it, fed what our jieba index indexes (``indexed_text``: the
    heading path in front where it was prefixed); the manifest, not the store, keeps the location."""
    from vectorstore import open_store

    from .payload import indexed_text

    options: dict[str, Any] = {"read_only": read_only}
    if not read_only:
        options["writer_lock"] = writer_lock
    if record.backend == "milvus":
        options.update(record.options(), token=token, record_location=False)
        if not read_only:
            options.update(full_text=None, full_text_of=indexed_text)
    return open_store(kb_dir / STORE_DIR, backend=record.backend, dim=dim, **options)
