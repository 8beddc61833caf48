"""kill -9 a real `kb index` subprocess at random moments: the knowledge base must open, answer, and
hold every file whole, either as before or as after the edit being indexed."""

from __future__ import annotations

import hashlib
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ingest import ChineseTextSplitter, read_text
from kb_assistant.embedders import HashEmbedder
from kb_assistant.kb import KnowledgeBase, bm25
from kb_assistant.kb.embed_cache import CACHE_FILE, EmbedCache
from kb_assistant.kb.manifest import read_manifest
from kb_assistant.settings import load_settings

FILES = 60
KILLS = 10


def _version(i: int, v: int) -> str:
    topic = ["年假", "报销", "VPN", "backup", "食堂"][i % 5]
    return "\n\n".join(
        f"文件{i}第{v}版，第{p}段：关于{topic}的规定。" + "正式员工每年享有十五天带薪年假。" * (5 + v + i % 3)
        for p in range(3 + v)
    )


def _expected(path: Path, text: str) -> tuple[str, list[str]]:
    path.write_text(text, encoding="utf-8")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    splitter = ChineseTextSplitter(chunk_size=200, chunk_overlap=20)
    from ingest import Document

    return digest, [c.text for c in splitter.split([Document(str(path), read_text(path))])]


STORES = ["faiss", pytest.param("milvus", marks=pytest.mark.skipif(
    __import__("importlib").util.find_spec("milvus_lite") is None, reason="pip install pymilvus milvus-lite"))]


def _run_until_file(command: list[str], env: dict[str, str], k: int, jitter: float) -> tuple[bool, int, str]:
    """Start `kb index`, SIGKILL it `jitter` seconds after its progress bar shows `k` files done.

    Killing at a count of files seen (not after a fixed sleep) lands the kill inside the run on a machine of
    any speed; the jitter moves it between a file's embedding and its write. Returns (killed mid-run,
    return code, what it printed)."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    seen: list[bytes] = []
    reached = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        while chunk := os.read(proc.stderr.fileno(), 4096):
            seen.append(chunk)
            done = re.findall(rb"(\d+)/\d+ \[", b"".join(seen[-2:]))
            if done and int(done[-1]) >= k:
                reached.set()
        reached.set()  # the child closed stderr: it ended

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reached.wait(timeout=120)
    time.sleep(jitter)
    mid_run = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    code = proc.wait()
    reader.join(timeout=10)
    return mid_run, code, b"".join(seen).decode("utf-8", "replace")


def _check(settings, versions: dict[str, dict[str, list[str]]]) -> int:  # type: ignore[no-untyped-def]
    """Every indexed file is whole and at one of its two versions; returns the number of documents."""
    if not (settings.kb_root / "crash").exists():
        return 0  # killed before the knowledge base was created: nothing to check
    with KnowledgeBase.open(settings, "crash", HashEmbedder(64), create=False) as kb:
        by_source: dict[str, list[dict]] = {}
        for _id, p in kb.store.payloads():
            by_source.setdefault(p["source"], []).append(p)
        for source, payloads in by_source.items():
            hashes = {p["doc_hash"] for p in payloads}
            assert len(hashes) == 1, f"{source} mixes versions: {hashes}"
            [digest] = hashes
            assert digest in versions[source], f"{source}: unknown version"
            payloads.sort(key=lambda p: p["index"])
            assert [p["text"] for p in payloads] == versions[source][digest], f"{source} is half indexed"
        if by_source:
            assert kb.search("年假", 3)
        assert kb.count() == sum(len(v) for v in by_source.values())
        # The keyword index syncs from whatever the killed run left (its segment merged every 50 chunks).
        keyword = kb.keyword_index("jieba")
        assert sorted(keyword.index.ids()) == sorted(kb.store.ids())  # type: ignore[attr-defined]
        if by_source:
            assert keyword.search("年假", 3)
    assert read_manifest(settings.kb_root / "crash") is not None
    EmbedCache.open(settings.kb_root / "crash" / CACHE_FILE).close()
    return len(by_source)


@pytest.mark.parametrize("store", STORES)
def test_kill_9_at_random_moments_never_leaves_half_a_file(tmp_path: Path, store: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bm25, "DELTA_MAX", 50)
    rng = random.Random(1234)
    docs = tmp_path / "docs"
    docs.mkdir()
    settings = load_settings(chunk_size=200, chunk_overlap=20, store=store)
    env = {**os.environ, "KB_STORE": store, "KB_EMBEDDER": "hash:64", "KB_CHUNK_SIZE": "200", "KB_CHUNK_OVERLAP": "20",
           "KB_EMBED_BATCH_SIZE": "8", "KB_TEST_EMBED_DELAY": "0.08"}
    versions: dict[str, dict[str, list[str]]] = {}
    paths = [docs / f"doc{i:02d}.txt" for i in range(FILES)]
    for i, path in enumerate(paths):  # record both versions of every file, leave version 0 on disk
        for v in (1, 0):
            digest, chunks = _expected(path, _version(i, v))
            versions.setdefault(str(path.resolve()), {})[digest] = chunks
    command = [sys.executable, "-m", "kb_assistant", "index", str(docs), "--kb", "crash"]
    killed_mid_run = 0
    round_ = 0
    # Kill until KILLS kills landed during a run; a run the kill missed must have ended well.
    while killed_mid_run < KILLS and round_ < 3 * KILLS:
        round_ += 1
        for i in rng.sample(range(FILES), FILES // 2):  # edit half the files each round
            paths[i].write_text(_version(i, (round_ + 1) % 2), encoding="utf-8")
        mid_run, code, printed = _run_until_file(command, env, rng.randrange(FILES - 1), rng.uniform(0, 0.2))
        if mid_run:
            killed_mid_run += 1
        else:
            assert code == 0, printed[-2000:]
        _check(settings, versions)
    assert killed_mid_run == KILLS, f"only {killed_mid_run} of {round_} kills landed during a run"
    command.append("--quiet")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert _check(settings, versions) == FILES
    with KnowledgeBase.open(settings, "crash", HashEmbedder(64)) as kb:  # and each holds what is on disk now
        for d in kb.documents():
            assert d.content_hash == hashlib.sha256(Path(d.source).read_bytes()).hexdigest()
