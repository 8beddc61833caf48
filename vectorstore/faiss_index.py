"""FAISS index building and the on-disk index cache (``index.faiss`` + ``index.json`` sidecar)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import VectorStoreError

log = logging.getLogger(__name__)

INDEX_FILE = "index.faiss"
SIDECAR_FILE = "index.json"
INDEX_KINDS = ("auto", "flat")
CACHE_FORMAT = 1


def import_faiss() -> Any:
    """Import faiss lazily so the rest of kb-assistant works (and says what to do) without it."""
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise VectorStoreError(
            "the FAISS vector store needs the faiss package: pip install faiss-cpu"
        ) from exc
    return faiss


def resolve_kind(kind: str, n: int) -> str:
    """The concrete index kind for ``n`` vectors.

    ``auto`` is flat (exact) at every size for now. When approximate search is added, this is
    the one place to switch, e.g. IVF above a few tens of thousands of vectors as txtai does;
    the cache sidecar records the concrete kind, so a switch triggers a rebuild by itself.
    """
    if kind not in INDEX_KINDS:
        raise ValueError(f"unknown index_kind {kind!r}; choose one of {', '.join(INDEX_KINDS)}")
    return "flat"


def build_index(kind: str, dim: int, ids: np.ndarray, vectors: np.ndarray) -> Any:
    """A fresh inner-product index holding ``vectors`` under ``ids`` (``IndexIDMap2`` so removal works)."""
    faiss = import_faiss()
    concrete = resolve_kind(kind, len(ids))
    if concrete != "flat":  # pragma: no cover - only flat exists today
        raise ValueError(concrete)
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, np.int64))
    return index


def index_ids(index: Any) -> np.ndarray:
    """The external ids held by an ``IndexIDMap2`` (diagnostics and tests)."""
    return import_faiss().vector_to_array(index.id_map).astype(np.int64)


@dataclass(frozen=True)
class CacheInfo:
    """What the sidecar says about ``index.faiss``: the SQLite generation it reflects and its digest."""

    generation: int
    sha256: str
    ntotal: int
    dim: int
    kind: str
    format: int = CACHE_FORMAT


def _atomic_write(path: Path, data: bytes) -> None:
    # Temp file in the same directory so os.replace is a rename on one filesystem; fsync the
    # data before the rename and the directory after it, so a crash leaves old or new, never torn.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Persist a rename in ``directory`` (no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temp_files(directory: Path) -> None:
    """Delete temp files left by a writer that crashed mid-save (call only under the writer lock)."""
    for name in (INDEX_FILE, SIDECAR_FILE):
        for tmp in directory.glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)


def save_cache(directory: Path, index: Any, generation: int, kind: str, sha256: str | None = None) -> str:
    """Write the index then its sidecar, each atomically; returns the index file's sha256.

    Pass ``sha256`` of the file already on disk to rewrite only the sidecar (payload-only
    changes bump the generation but leave the vectors, and so the index file, unchanged).
    The sidecar is written last and carries the digest, so any crash or race between the two
    writes is detected on load as a mismatch and answered with a rebuild.
    """
    remove_stale_temp_files(directory)
    if sha256 is None:
        data = import_faiss().serialize_index(index).tobytes()
        sha256 = hashlib.sha256(data).hexdigest()
        _atomic_write(directory / INDEX_FILE, data)
    info = CacheInfo(generation, sha256, int(index.ntotal), int(index.d), resolve_kind(kind, index.ntotal))
    _atomic_write(directory / SIDECAR_FILE, json.dumps(info.__dict__).encode())
    return sha256


def load_cache(directory: Path, generation: int, dim: int, kind: str, count: int) -> tuple[Any, str] | None:
    """The cached index and its digest if it is intact and reflects ``generation``, else None (logged)."""
    try:
        info = CacheInfo(**json.loads((directory / SIDECAR_FILE).read_text()))
        if info.format != CACHE_FORMAT:
            raise ValueError(f"cache format {info.format}")
        if info.generation != generation:
            log.info("index cache is at generation %d, store at %d", info.generation, generation)
            return None
        if (info.dim, info.ntotal, info.kind) != (dim, count, resolve_kind(kind, count)):
            raise ValueError(f"cache describes dim={info.dim} ntotal={info.ntotal} kind={info.kind}")
        # Read once, check, then deserialize the same bytes: no window for the file to change.
        data = (directory / INDEX_FILE).read_bytes()
        if hashlib.sha256(data).hexdigest() != info.sha256:
            raise ValueError("index.faiss does not match its sidecar checksum")
        index = import_faiss().deserialize_index(np.frombuffer(data, dtype=np.uint8))
        if index.ntotal != count or index.d != dim:
            raise ValueError("deserialized index has the wrong size")
        return index, info.sha256
    except FileNotFoundError:
        log.info("no index cache in %s", directory)
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        log.info("index cache in %s is unusable (%s)", directory, exc)
    return None
