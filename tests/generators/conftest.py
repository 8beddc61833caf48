"""The tiny GLM checkpoint, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from .tiny_glm import tiny_glm_dir


@pytest.fixture(scope="session")
def tiny_glm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_glm_dir(tmp_path_factory.getbasetemp())
