"""Shared fixtures: every test gets its own data directory and, unless it asks for the real
models, the fast deterministic stand-ins (hash embedder, echo generator)."""

from __future__ import annotations

import os
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
