"""kill -9 in the middle of one large file: nothing of it is searchable (whole files only), its finished
embeddings are kept, and the next run embeds only the rest, showing chunks embedded / total as it goes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

from kb_assistant.embedders import HashEmbedder
from kb_assistant.kb import KnowledgeBase
from kb_assistant.kb.embed_cache import CACHE_FILE, EmbedCache
from kb_assistant.settings import load_settings
from tests.hostile.run import ROOT

PROGRESS = re.compile(rb"big\.txt \((\d+)/(\d+) chunks\)")


def _big_text() -> str:
    return "\n\n".join(f"第{i}段：正式员工每年享有{i}天带薪年假，病假需提供医院证明。Port {i}." for i in range(1500))


def _kill_at_progress(command: list[str], env: dict[str, str], fraction: float) -> tuple[int, int, bytes]:
    """Start `kb index`, SIGKILL it once its bar shows at least ``fraction`` of the chunks embedded.
    Returns (chunks embedded when killed, chunks in the file, what it printed)."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stderr is not None
    seen: list[bytes] = []
    reached = threading.Event()
    last = [0, 0]

    def read() -> None:
        assert proc.stderr is not None
        while chunk := os.read(proc.stderr.fileno(), 4096):
            seen.append(chunk)
            found = PROGRESS.findall(b"".join(seen[-2:]))
            if found:
                last[:] = [int(found[-1][0]), int(found[-1][1])]
                if last[0] >= fraction * last[1]:
                    reached.set()
        reached.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reached.wait(timeout=300)
    assert proc.poll() is None, b"".join(seen).decode("utf-8", "replace")  # killed mid-file, not after
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reader.join(timeout=10)
    return last[0], last[1], b"".join(seen)


def test_kill_mid_file_then_the_next_run_embeds_only_the_rest(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text(_big_text(), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KB_CHUNK_SIZE": "100", "KB_CHUNK_OVERLAP": "10"}
    command = [sys.executable, "-m", "kb_assistant", "index", str(big), "--kb", "big"]
    done, total, _ = _kill_at_progress(command, {**env, "KB_TEST_EMBED_DELAY": "0.05"}, 0.4)
    assert total > 500 and 0.4 * total <= done < total

    settings = load_settings(chunk_size=100, chunk_overlap=10)
    with KnowledgeBase.open(settings, "big", HashEmbedder(256)) as kb:
        assert kb.count() == 0 and kb.documents() == []  # none of a half-indexed file is visible
        cache = EmbedCache.open(kb.directory / CACHE_FILE)
        try:
            assert cache.count() >= done
        finally:
            cache.close()

    rerun = subprocess.run([*command, "--quiet"], env=env, capture_output=True, text=True, cwd=ROOT, check=False)
    assert rerun.returncode == 0, rerun.stderr
    stored, embedded, cached = map(int, re.search(r"(\d+) chunks stored \((\d+) embedded, (\d+) from cache\)",
                                                  rerun.stdout).groups())
    assert stored == total and cached >= done and embedded == total - cached
    with KnowledgeBase.open(settings, "big", HashEmbedder(256)) as kb:
        assert kb.count() == total


def test_a_streamed_file_interrupted_part_way_resumes_from_the_cache(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text(_big_text(), encoding="utf-8")
    settings = load_settings(chunk_size=100, chunk_overlap=10, embed_batch_size=8)
    seen: list[tuple[int, int]] = []

    def stop_half_way(done: int, total: int, path: str) -> None:
        found = PROGRESS.findall(path.encode())
        if found:
            seen.append((int(found[-1][0]), int(found[-1][1])))
            if seen[-1][0] >= seen[-1][1] // 2:
                raise KeyboardInterrupt  # Ctrl-C in the middle of the file

    with KnowledgeBase.open(settings, "big", HashEmbedder(256)) as kb:
        kb.stream_block_bytes = 16 * 1024  # real files stream above 4 MB
        try:
            kb.index_paths([big], progress=stop_half_way)
        except KeyboardInterrupt:
            pass
        done, total = seen[-1]
        assert len({t for _, t in seen}) == 1 and [d for d, _ in seen] == sorted(d for d, _ in seen)
        assert kb.count() == 0  # the file is committed whole or not at all
        report = kb.index_paths([big])
    assert report.cached >= done and report.embedded == total - report.cached
    assert sum(o.chunks for o in report.outcomes) == total
