from pathlib import Path

import pytest
from pydantic import ValidationError

from kb_assistant.settings import load_settings


def test_env_prefix_and_defaults(isolated_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_TOP_K", "7")
    s = load_settings()
    assert s.data_dir == isolated_data_dir
    assert s.top_k == 7
    assert s.kb_root == isolated_data_dir / "kbs"


def test_toml_file_then_env_then_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('top_k = 9\nchunk_size = 300\nembedder = "hash:64"\n', encoding="utf-8")
    monkeypatch.setenv("KB_CONFIG", str(cfg))
    monkeypatch.delenv("KB_EMBEDDER")
    s = load_settings()
    assert (s.top_k, s.chunk_size, s.embedder) == (9, 300, "hash:64")
    monkeypatch.setenv("KB_TOP_K", "3")
    assert load_settings().top_k == 3
    assert load_settings(top_k=11, chunk_size=None).top_k == 11


def test_invalid_values_are_rejected() -> None:
    with pytest.raises(ValidationError):
        load_settings(top_k=0)
    with pytest.raises(ValidationError):
        load_settings(unknown_field=1)
