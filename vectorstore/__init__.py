"""Vector storage for kb-assistant: ids, vectors and JSON payloads behind the ``VectorStore`` seam."""

from .base import VectorStore
from .errors import (
    DimensionMismatchError,
    DuplicateIdError,
    StoreLockedError,
    StoreNotFoundError,
    StoreWriteError,
    VectorStoreError,
)
from .faiss_store import FaissStore
from .registry import BACKENDS, Backend, open_store, register_backend
from .types import Hit, Record

__all__ = [
    "BACKENDS",
    "Backend",
    "DimensionMismatchError",
    "DuplicateIdError",
    "FaissStore",
    "Hit",
    "Record",
    "StoreLockedError",
    "StoreNotFoundError",
    "StoreWriteError",
    "VectorStore",
    "VectorStoreError",
    "open_store",
    "register_backend",
]
