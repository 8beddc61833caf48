from pathlib import Path

import pytest

from kb_assistant.errors import SettingsError
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
    with pytest.raises(SettingsError, match=r"setting top_k \(KB_TOP_K\) = 0"):
        load_settings(top_k=0)
    with pytest.raises(SettingsError, match="unknown setting 'unknown_field'"):
        load_settings(unknown_field=1)


BAD_SETTINGS = [
    ({"KB_TOP_K": "-1"}, "KB_TOP_K"),
    ({"KB_CHUNK_SIZE": "0"}, "KB_CHUNK_SIZE"),
    ({"KB_MIN_RELEVANCE": "2"}, "KB_MIN_RELEVANCE"),
    ({"KB_MAX_NEW_TOKENS": "8"}, "KB_MAX_NEW_TOKENS"),
    ({"KB_CHUNK_OVERLAP": "500"}, "chunk_overlap (500) must be smaller than chunk_size (500)"),
    ({"KB_DATA_DIR": __file__}, "is a file, not a folder"),
]


@pytest.mark.parametrize(("env", "named"), BAD_SETTINGS)
@pytest.mark.parametrize("command", [["list"], ["search", "x"], ["kb", "list"]])
def test_each_bad_setting_is_one_line_and_exit_1(
    env: dict[str, str], named: str, command: list[str], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from kb_assistant.cli import main

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(command) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and named in err, err


@pytest.mark.parametrize(
    ("text", "named"), [("top_k = [\n", "cannot be read"), ("topk = 3\n", "unknown setting 'topk'")]
)
def test_a_broken_config_file_is_named(
    text: str, named: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from kb_assistant.cli import main

    config = tmp_path / "config.toml"
    config.write_text(text)
    monkeypatch.setenv("KB_CONFIG", str(config))
    assert main(["list"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and named in err and str(config) in err


def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    from kb_assistant.cli import main

    monkeypatch.setenv("KB_TOP_K", "-1")
    with pytest.raises(SettingsError):
        main(["--debug", "list"])


def test_output_to_a_closed_pipe_ends_quietly(isolated_data_dir: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(800):  # listed, well over a pipe's 64 KiB buffer
        (docs / f"{'a-rather-long-file-name-' * 4}{i:03d}.txt").write_text(f"document {i} about port {i}")
    kb = [sys.executable, "-m", "kb_assistant"]
    subprocess.run([*kb, "index", str(docs), "--kb", "p", "--quiet"], check=True, capture_output=True)
    piped = subprocess.run(f"{' '.join(kb)} list --kb p | head -1", shell=True, capture_output=True, text=True)
    assert piped.returncode == 0 and piped.stdout.count("\n") == 1
    assert "Traceback" not in piped.stderr and "BrokenPipe" not in piped.stderr, piped.stderr
