"""The tiny GLM checkpoint (shared with tests/generators), built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.generators.tiny_glm import tiny_glm_dir


@pytest.fixture(scope="session")
def tiny_glm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_glm_dir(tmp_path_factory.getbasetemp())
