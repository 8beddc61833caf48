"""The FAISS cache's snapshot: ``index.faiss`` and its ``index.json`` sidecar (the generation it reflects
and its digest), loaded with the ``index.log`` of later commits replayed onto it."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import faiss_log
from .faiss_index import IndexSpec, configure, import_faiss, index_params, kind_of, needs_rebuild
from .fsutil import atomic_write, atomic_writer

log = logging.getLogger(__name__)

INDEX_FILE = "index.faiss"
SIDECAR_FILE = "index.json"
CACHE_FORMAT = 2  # 2 adds the token of the snapshot's change log; 1 (no log) still loads


@dataclass(frozen=True)
class CacheInfo:
    """What the sidecar says about ``index.faiss``: the SQLite generation it reflects and its digest."""

    generation: int
    sha256: str
    ntotal: int
    dim: int
    kind: str
    format: int = CACHE_FORMAT
    params: dict[str, int] = field(default_factory=dict)  # e.g. IVF nlist and nprobe
    log: str = ""  # token of the index.log extending this snapshot ("" : none)


@dataclass
class Loaded:
    """An index loaded from the cache: the snapshot's digest and where its log ends (None: no log)."""

    index: Any
    sha256: str | None  # of index.faiss, when it equals the loaded index (no log replayed)
    log: faiss_log.LogPosition | None


def remove_stale_temp_files(directory: Path) -> None:
    """Delete temp files left by a writer that crashed mid-save (call only under the writer lock)."""
    for name in (INDEX_FILE, SIDECAR_FILE, faiss_log.LOG_FILE):
        for tmp in directory.glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)


def save_cache(
    directory: Path, index: Any, generation: int, sha256: str | None = None, log: str = ""
) -> str:
    """Write the snapshot then its sidecar, each atomically; returns the index file's sha256.

    Pass ``sha256`` of the file already on disk to rewrite only the sidecar. ``log`` is the token of
    the change log that will extend this snapshot (the caller resets ``index.log`` to it afterwards;
    until then the old log's token does not match and is never replayed onto this snapshot).
    The sidecar is written last and carries the digest, so any crash or race between the two
    writes is detected on load as a mismatch and answered with a rebuild.
    """
    remove_stale_temp_files(directory)
    if sha256 is None:
        sha256 = _write_index(directory / INDEX_FILE, index)
    info = CacheInfo(
        generation, sha256, int(index.ntotal), int(index.d), kind_of(index), params=index_params(index), log=log
    )
    atomic_write(directory / SIDECAR_FILE, json.dumps(info.__dict__).encode())
    return sha256


def _write_index(path: Path, index: Any) -> str:
    """Write ``index`` to ``path`` atomically, streamed a megabyte at a time through its digest (returned):
    serialising it whole first held two more copies of it (at 1M x 384 dims, 3 GB above the index)."""
    faiss = import_faiss()
    digest = hashlib.sha256()
    with atomic_writer(path) as fh:
        def write(block: bytes) -> None:
            digest.update(block)
            fh.write(block)

        faiss.write_index(index, faiss.PyCallbackIOWriter(write))  # its last block is written before it returns
    return digest.hexdigest()


def _read_index(path: Path, sha256: str) -> Any:
    """The index in ``path`` if its digest is ``sha256`` (else ValueError), streamed a megabyte at a time:
    reading it whole first held a second copy of the index while it was deserialised. Both passes read
    one open file: snapshots are only ever replaced by a rename, never rewritten in place, so the bytes
    deserialised are the bytes checked (no window for the file to change)."""
    faiss = import_faiss()
    with open(path, "rb") as fh:
        digest = hashlib.sha256()
        while block := fh.read(1 << 20):
            digest.update(block)
        if digest.hexdigest() != sha256:
            raise ValueError("index.faiss does not match its sidecar checksum")
        fh.seek(0)
        return faiss.read_index(faiss.PyCallbackIOReader(fh.read))


def load_cache(directory: Path, generation: int, dim: int, spec: IndexSpec, count: int) -> Loaded | None:
    """The cached index brought to ``generation`` (the snapshot plus its log replayed), if it is intact
    and the kind ``spec`` wants at ``count`` vectors, else None (logged). ``spec.nprobe`` is applied."""
    try:
        info = CacheInfo(**json.loads((directory / SIDECAR_FILE).read_text()))
        if info.format not in (1, CACHE_FORMAT):
            raise ValueError(f"cache format {info.format}")
        if info.generation > generation or (info.generation < generation and not info.log):
            log.info("index cache is at generation %d, store at %d", info.generation, generation)
            return None
        if info.dim != dim or info.kind not in ("flat", "ivf"):
            raise ValueError(f"cache describes dim={info.dim} kind={info.kind}")
        index = _read_index(directory / INDEX_FILE, info.sha256)
        if index.ntotal != info.ntotal or index.d != dim or kind_of(index) != info.kind:
            raise ValueError("deserialized index has the wrong size or kind")
        position = None
        if info.log:
            position = faiss_log.replay(directory, info.log, index, info.generation, generation, dim)
            if position is None and info.generation < generation:
                log.info("index log in %s does not reach generation %d", directory, generation)
                return None
        if index.ntotal != count or spec.resolve(count, current=info.kind) != info.kind:
            raise ValueError(f"cache holds {index.ntotal} {info.kind} vectors, the store {count}")
        if needs_rebuild(index, spec):
            raise ValueError(f"{info.kind} index with {info.params} is due for retraining")
        # The digest describes the file only while nothing was replayed onto it.
        sha = info.sha256 if info.generation == generation else None
        return Loaded(configure(index, spec), sha, position)
    except FileNotFoundError:
        log.info("no index cache in %s", directory)
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        log.info("index cache in %s is unusable (%s)", directory, exc)
    return None
