"""Shared fixtures: every test gets its own data directory and, unless it asks for the real
models, the fast deterministic stand-ins (hash embedder, echo generator)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads or writes the user's real data directory or config file."""
    data = tmp_path_factory.mktemp("kb-data")
    monkeypatch.setenv("KB_DATA_DIR", str(data))
    monkeypatch.setenv("KB_CONFIG", str(data / "no-config.toml"))
    monkeypatch.setenv("KB_EMBEDDER", "hash:256")
    monkeypatch.setenv("KB_GENERATOR", "echo")
    monkeypatch.setenv("KB_RAISE", "")
    for var in ("KB_MODEL_PATH", "KB_TOP_K", "KB_CONTEXT_WINDOW", "KB_DEFAULT_KB", "KB_CHUNK_SIZE"):
        monkeypatch.delenv(var, raising=False)
    return data


@pytest.fixture(scope="session")
def bundled_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One assembled copy of the bundled GGUF for the whole session (slow tests only)."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of one Milvus server shared by the whole session."""
    from tests.milvus_server import running_milvus

    with running_milvus(tmp_path_factory.mktemp("milvus-server")) as uri:
        yield uri


@pytest.fixture
def server_collections(milvus_server: str) -> Iterator[Callable[[str], str]]:
    """``name -> collection``: a fresh collection name per test (and name), dropped afterwards."""
    from pymilvus import MilvusClient

    names: dict[str, str] = {}

    def collection(name: str) -> str:
        return names.setdefault(name, f"t{uuid.uuid4().hex[:12]}_{name}")

    yield collection
    client = MilvusClient(uri=milvus_server)
    try:
        for name in names.values():
            for suffix in ("", "_state"):
                if client.has_collection(name + suffix):
                    client.drop_collection(name + suffix)
    finally:
        client.close()
