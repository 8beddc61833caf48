"""One `kb index` run over a folder of hostile files: each bad one is reported by name with its reason,
every good one is searchable, the run exits 1, and memory stays bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb_assistant.embedders import HashEmbedder
from kb_assistant.kb import KnowledgeBase
from kb_assistant.settings import load_settings
from tests.hostile.files import BAD, GOOD, MAX_FILE_MB, hostile_corpus
from tests.hostile.run import run_kb

pytest.importorskip("docx")
pytest.importorskip("pypdf")

MEMORY_CEILING = 1024 * 1024 * 1024


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return hostile_corpus(tmp_path / "hostile")


def test_one_run_over_the_hostile_corpus(corpus: Path, tmp_path: Path) -> None:
    run = run_kb(["index", str(corpus), "--kb", "hostile", "--quiet"], tmp_path, KB_MAX_FILE_MB=str(MAX_FILE_MB))
    print(f"peak RSS {run.peak_rss >> 20} MB\n{run.err}{run.out}")
    assert run.code == 1
    assert "Traceback" not in run.err
    lines = run.err.splitlines()
    for name, reason in BAD.items():
        (line,) = [ln for ln in lines if ln.split(": ")[1] == str(corpus / name)]
        assert line.startswith(("failed: ", "skipped: ")) and reason in line, line
    assert len(lines) == len(BAD) + 1  # loop2.txt, the loop's other end, is reported too
    assert f"{len(GOOD)} added" in run.out and "8 failed, 3 skipped" in run.out
    assert run.peak_rss < MEMORY_CEILING

    with KnowledgeBase.open(load_settings(), "hostile", HashEmbedder(256), create=False) as kb:
        assert sorted(Path(d.source).name for d in kb.documents()) == sorted(GOOD)
        for name, sentence in GOOD.items():
            assert Path(kb.search(sentence, 1)[0].source).name == name
