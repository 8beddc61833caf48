"""Connections for ``MilvusStore``: pymilvus clients, and the embedded Milvus Lite server per ``.db``."""

from __future__ import annotations

import threading
from typing import Any

from .errors import StoreLockedError, VectorStoreError

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


def _check_lite_free(path: str) -> None:
    """Milvus Lite flocks ``<path>/LOCK`` per process; say so plainly instead of a gRPC error."""
    import os

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
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError:
        raise StoreLockedError(
            f"another process has the Milvus Lite store {path} open; Milvus Lite allows one process at a time "
            "(close the other one, or move the knowledge base to a Milvus server)"
        ) from None
    finally:
        os.close(fd)


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
