"""The vector-store exception family: every message says what to do next."""

from __future__ import annotations


class VectorStoreError(Exception):
    """Base class for errors meant for users of a vector store."""


class DimensionMismatchError(VectorStoreError, ValueError):
    """A vector or an opened store does not have the dimension the store was built with."""


class DuplicateIdError(VectorStoreError, ValueError):
    """A record id that is already stored (or repeated within one call) was added."""


class StoreLockedError(VectorStoreError):
    """Another process holds the store's writer lock."""


class StoreNotFoundError(VectorStoreError, FileNotFoundError):
    """The store directory holds no store and creating one was not allowed."""


class StoreWriteError(VectorStoreError):
    """A commit failed for want of disk space (or an I/O error); nothing of it was saved."""
