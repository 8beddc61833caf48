"""Connections for ``MilvusStore``: pymilvus clients, and the embedded Milvus Lite server per ``.db``."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

from .errors import StoreLockedError, VectorStoreError

log = logging.getLogger(__name__)
_users: dict[str, int] = {}  # Lite path -> open stores using its in-process server
_lock = threading.Lock()


def connect(uri: str, *, token: str | None, lite_path: str | None) -> Any:
    """A ``MilvusClient`` for ``uri``; for a Lite path, its in-process server is started (or shared)."""
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise VectorStoreError("the milvus vector store needs: pip install pymilvus milvus-lite") from None
    if lite_path is not None:
        _check_lite_free(lite_path)
    try:
        client = MilvusClient(uri=uri, token=token or "")
    except Exception as exc:
        hint = (
            "is another process using this Milvus Lite file? (one process at a time; use a Milvus server for more)"
            if lite_path
            else "is the server running and KB_STORE_URI / KB_STORE_TOKEN right?"
        )
        raise VectorStoreError(f"cannot open Milvus at {uri}: {exc}; {hint}") from exc
    if lite_path is not None:
        with _lock:
            _users[lite_path] = _users.get(lite_path, 0) + 1
    return client


def server_version(client: Any) -> tuple[int, int]:
    """``(major, minor)`` of the Milvus API the server behind ``client`` speaks."""
    return parse_version(str(client.get_server_version()))


def parse_version(raw: str) -> tuple[int, int]:
    """``(major, minor)`` from a server's version string; Milvus Lite 3.x speaks 2.6's API."""
    if raw.startswith("milvus_lite"):
        return (2, 6)
    found = re.match(r"v?(\d+)\.(\d+)", raw)
    if not found:  # an unknown build string: assume a current server
        return (2, 6)
    return int(found.group(1)), int(found.group(2))


def _check_lite_free(path: str) -> None:
    """Milvus Lite flocks ``<path>/LOCK`` per process: say so plainly instead of a gRPC error, and,
    holding that lock for a moment, repair what a killed writer may have left (``repair_stale_wal``)."""
    try:
        import fcntl
    except ImportError:  # Windows: Milvus Lite's own error will have to do
        return
    from milvus_lite.server_manager import server_manager_instance

    lock_file = os.path.join(path, "LOCK")
    with _lock:
        if path in _users or path in getattr(server_manager_instance, "_servers", {}):
            return  # this process already serves it
    if not os.path.exists(lock_file):
        return
    fd = os.open(lock_file, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise StoreLockedError(
                f"another process has the Milvus Lite store {path} open; Milvus Lite allows one process at a "
                "time (close the other one, or move the knowledge base to a Milvus server)"
            ) from None
        try:
            repair_stale_wal(path)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def repair_stale_wal(path: str) -> list[str]:
    """Delete write-ahead logs that a Milvus Lite flush had already saved; returns what was removed.

    A Milvus Lite flush writes the rows to a segment, commits its manifest (``active_wal_number``
    moves past the log) and only then deletes the log. A process killed between the last two steps
    leaves a log whose rows are also in a segment, and Milvus Lite 3.2 replays it on the next open:
    every row of that flush comes back twice, same primary key and all. A log numbered below the
    manifest's ``active_wal_number`` is one of those by construction (Milvus Lite itself deletes
    them after its next flush), so deleting it before Milvus Lite opens the store loses nothing.
    Call with the store's ``LOCK`` held, so that no Milvus Lite process is using it.
    """
    removed: list[str] = []
    for manifest in Path(path).glob("**/manifest.json"):
        wal_dir = manifest.parent / "wal"
        if not wal_dir.is_dir():
            continue
        try:
            active = int(json.loads(manifest.read_text(encoding="utf-8"))["active_wal_number"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable or older format: leave recovery to Milvus Lite
        for log_file in wal_dir.iterdir():
            found = re.fullmatch(r"wal_(?:data|delta)_(\d+)\.arrow", log_file.name)
            if found and int(found.group(1)) < active:
                log_file.unlink()
                removed.append(str(log_file))
    if removed:
        log.warning(
            "Milvus Lite store %s: removed %d write-ahead log(s) already saved by an interrupted flush",
            path, len(removed),
        )
    return removed


def disconnect(client: Any, lite_path: str | None) -> None:
    """Close ``client``; the last store on a Lite path also stops its server (flushing it to disk)."""
    try:
        client.close()
    finally:
        if lite_path is not None:
            with _lock:
                left = _users.get(lite_path, 1) - 1
                if left > 0:
                    _users[lite_path] = left
                else:
                    _users.pop(lite_path, None)
            if left <= 0:
                from milvus_lite.server_manager import server_manager_instance

                server_manager_instance.release_server(lite_path)
