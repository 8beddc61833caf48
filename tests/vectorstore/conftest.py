"""Fixtures for vector-store contract tests: real backends on real files in tmp_path."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from vectorstore import VectorStore, open_store

DIM = 16

StoreFactory = Callable[..., VectorStore]


def unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    """``n`` random float32 vectors normalised to length 1 (so self inner product is 1)."""
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# Add a backend here to run every contract test against it too. "milvus" is Milvus Lite (an
# embedded .db file); "milvus-server" is the same MilvusStore on a real Milvus server over TCP.
_MILVUS_MISSING = importlib.util.find_spec("pymilvus") is None or importlib.util.find_spec("milvus_lite") is None
_SERVER_MISSING = _MILVUS_MISSING or importlib.util.find_spec("milvus") is None
BACKEND_PARAMS = [
    "faiss",
    pytest.param("milvus", marks=pytest.mark.skipif(_MILVUS_MISSING, reason="pip install pymilvus milvus-lite")),
    pytest.param(
        "milvus-server",
        marks=pytest.mark.skipif(_SERVER_MISSING, reason="pip install milvus==2.3.5 (a Milvus server) and pymilvus"),
    ),
]


@pytest.fixture(params=BACKEND_PARAMS)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """``factory(name="kb", *, dim=DIM, **kw)`` opens (or reopens) the store named ``name``."""
    opened: list[VectorStore] = []
    backend = request.param
    where: Callable[[str], dict[str, object]] = lambda name: {}  # noqa: E731
    if backend == "milvus-server":
        uri = request.getfixturevalue("milvus_server")
        collection = request.getfixturevalue("server_collections")
        backend = "milvus"
        where = lambda name: {"uri": uri, "collection": collection(name)}  # noqa: E731

    def factory(name: str = "kb", *, dim: int | None = DIM, **kw: object) -> VectorStore:
        store = open_store(tmp_path / name, backend=backend, dim=dim, **{**where(name), **kw})
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()
