"""Vector-store backends keyed by name, each declaring the packages it needs (for ``kb doctor``)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import VectorStore
from .errors import VectorStoreError


@dataclass(frozen=True)
class Backend:
    """A named backend: how to open it and which importable modules (and pip names) it needs."""

    name: str
    opener: Callable[..., VectorStore]
    requires: tuple[tuple[str, str], ...] = ()  # (import name, pip install name)

    def missing(self) -> list[str]:
        """pip names of the required packages that cannot be imported."""
        return [pip for module, pip in self.requires if importlib.util.find_spec(module) is None]


def _open_faiss(directory: str | Path, **kw: Any) -> VectorStore:
    from .faiss_store import FaissStore

    return FaissStore.open(directory, **kw)


def _open_milvus(directory: str | Path, **kw: Any) -> VectorStore:
    from .milvus_store import MilvusStore

    return MilvusStore.open(directory, **kw)


BACKENDS: dict[str, Backend] = {
    "faiss": Backend("faiss", _open_faiss, requires=(("faiss", "faiss-cpu"), ("numpy", "numpy"))),
    "milvus": Backend("milvus", _open_milvus, requires=(("pymilvus", "pymilvus"), ("milvus_lite", "milvus-lite"))),
}


def register_backend(backend: Backend) -> None:
    """Add (or replace) a backend, e.g. a Milvus store living in another module."""
    BACKENDS[backend.name] = backend


def open_store(
    directory: str | Path, *, backend: str = "faiss", dim: int | None = None, **kw: Any
) -> VectorStore:
    """Open the store in ``directory`` with the named backend; ``kw`` is backend tuning."""
    try:
        entry = BACKENDS[backend]
    except KeyError:
        raise VectorStoreError(
            f"unknown vector store backend {backend!r}; available: {', '.join(sorted(BACKENDS))}"
        ) from None
    missing = entry.missing()
    if missing:
        raise VectorStoreError(f"the {backend} vector store needs: pip install {' '.join(missing)}")
    return entry.opener(directory, dim=dim, **kw)
