"""A disk that fills up during a commit: one clear line, nothing half-written, and the knowledge base
opens and answers afterwards (still full), then indexes everything once space is freed."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kb_assistant.embedders import HashEmbedder
from kb_assistant.kb import KnowledgeBase
from kb_assistant.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
FILES = 40


def _write_docs(folder: Path) -> None:
    """~800 kB of text: more than the space left on the small disk below."""
    folder.mkdir()
    rng = random.Random(7)
    for i in range(FILES):
        words = "年假报销规定员工每天申请流程审批"
        paragraphs = [f"第{i}号文件第{p}段：" + "".join(rng.choice(words) for _ in range(300)) for p in range(20)]
        (folder / f"d{i:02d}.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")


# The size cap is set in a small launcher that then execs the CLI: a ``preexec_fn`` would make
# subprocess fork() the whole test process, and a process that has loaded gRPC (the Milvus tests run
# first) can abort in gRPC's fork handler before the child ever runs (seen in CI: exit -6).
_LAUNCH = (
    "import os, resource, signal, sys\n"
    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"  # writes past the cap fail with EFBIG instead
    "cap = int(sys.argv[1])\n"
    "if cap:\n"
    "    resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'kb_assistant', *sys.argv[2:]])\n"
)


def _kb(data: Path, *args: str, cap: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KB_DATA_DIR": str(data), "KB_EMBEDDER": "hash:256",
           "KB_GENERATOR": "echo", "KB_RAISE": ""}
    return subprocess.run([sys.executable, "-c", _LAUNCH, str(cap or 0), *args], env=env, capture_output=True,
                          text=True, timeout=300)


def _one_clear_line(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "free disk space" in last, last


def _answers_and_is_whole(data: Path, docs: Path) -> int:
    """The knowledge base opens, answers, and holds each indexed file whole; returns the files indexed."""
    found = _kb(data, "search", "年假", "--kb", "full")
    assert found.returncode == 0 and "[1]" in found.stdout, found.stderr[-3000:]
    asked = _kb(data, "ask", "年假怎么申请？", "--kb", "full")
    # answered from its sources, or refused over related passages (which files the full disk let in decides)
    # (any of the sources headings: "sources:", "sources (matched to the answer's sentences):", ...)
    answered = re.search(r"^(sources\b.*|related, but not an answer):$", asked.stdout, re.MULTILINE) is not None
    assert asked.returncode == 0 and answered, asked.stdout[-1000:] + asked.stderr[-3000:]
    settings = load_settings(data_dir=data)
    with KnowledgeBase.open(settings, "full", HashEmbedder(256), create=False) as kb:
        from ingest import ChineseTextSplitter, Document, read_text

        splitter = ChineseTextSplitter(chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap)
        docs_in = kb.documents()
        for d in docs_in:
            expected = splitter.split([Document(d.source, read_text(d.source))])
            assert d.chunks == len(expected), f"{d.source} is half indexed"
        return len(docs_in)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs (needs the right to mount; skipped where there is none)."""
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here; the size-capped file test covers the same path")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_fills_up_during_a_commit(small_disk: Path, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    _write_docs(docs)
    filler = small_disk / "filler.bin"
    filler.write_bytes(b"\0" * (12 << 20))  # leaves too little room for every file's chunks
    failed = _kb(small_disk, "index", str(docs), "--kb", "full", "--quiet")
    _one_clear_line(failed)
    assert _answers_and_is_whole(small_disk, docs) < FILES  # still full: opens and answers all the same
    filler.unlink()
    done = _kb(small_disk, "index", str(docs), "--kb", "full", "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    assert _answers_and_is_whole(small_disk, docs) == FILES


def test_a_size_capped_file_fails_the_commit_cleanly(tmp_path: Path) -> None:
    """The same without mounting anything: every file the indexer writes is capped (RLIMIT_FSIZE)."""
    docs, data = tmp_path / "docs", tmp_path / "data"
    _write_docs(docs)
    failed = _kb(data, "index", str(docs), "--kb", "full", "--quiet", cap=1 << 20)
    _one_clear_line(failed)
    assert _answers_and_is_whole(data, docs) < FILES
    done = _kb(data, "index", str(docs), "--kb", "full", "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    assert _answers_and_is_whole(data, docs) == FILES
