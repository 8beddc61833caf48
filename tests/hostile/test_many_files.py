"""A folder of many files (the issue's 100,000, at 20,000 here so CI can afford it; bench/bench_many_files.py
does the full count): ``kb index`` gets through all of them, and its memory grows by a few KB per file, not
with the files' contents held at once."""

from __future__ import annotations

from pathlib import Path

from kb_assistant.embedders import HashEmbedder
from kb_assistant.kb import KnowledgeBase
from kb_assistant.settings import load_settings
from tests.hostile.files import make_folder
from tests.hostile.run import run_kb

FILES = 20_000
SMALL = 1_000  # the baseline run: the indexer's own footprint at a small size
PER_FILE_BUDGET = 7 * 1024  # peak RSS bytes per extra file: measured ~5 KB (FAISS rows, the catalogue, the report);
# ~8.6 KB when every parsed file is held until the end instead of embedded and committed in batches


# ~20 s: 21,000 files through the real CLI (hash embedder).
def test_twenty_thousand_files_are_indexed_in_memory_that_grows_by_kilobytes_per_file(tmp_path: Path) -> None:
    small = run_kb(["index", str(make_folder(tmp_path / "small", SMALL)), "--kb", "small", "--quiet"], tmp_path)
    assert small.code == 0, small.err
    big = run_kb(["index", str(make_folder(tmp_path / "big", FILES)), "--kb", "many", "--quiet"], tmp_path)
    growth = (big.peak_rss - small.peak_rss) / (FILES - SMALL)
    print(f"peak RSS {small.peak_rss >> 20} MB at {SMALL} files, {big.peak_rss >> 20} MB at {FILES}: "
          f"{growth / 1024:.1f} KB per extra file")
    assert big.code == 0, big.err
    assert "Traceback" not in big.err
    assert f"many: {FILES} added," in big.out and "0 failed" in big.out, big.out
    assert growth < PER_FILE_BUDGET
    with KnowledgeBase.open(load_settings(), "many", HashEmbedder(256), create=False) as kb:
        assert kb.count() == FILES
        assert len(kb.documents()) == FILES
        assert len(kb.search("年假规定", 3)) == 3  # it opens and answers
