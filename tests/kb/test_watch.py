"""``kb watch`` on a real folder with a real watchdog observer: changes land within a bounded wait
(polled, never a timed assertion), editors' temporary files never do, and a restart catches up."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kb_assistant.embedders import HashEmbedder
from kb_assistant.kb import KnowledgeBase
from kb_assistant.kb.manifest import read_manifest
from kb_assistant.kb.watch import ChangeQueue, FolderWatcher, ignored
from kb_assistant.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 60.0  # generous bound for a loaded CI machine; the tests poll and return as soon as it holds


def eventually(check: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.1)


@pytest.mark.parametrize("name", [
    "~$report.docx", ".#notes.md", "notes.md~", "notes.md.swp", "notes.md.swx", "upload.txt.tmp", ".DS_Store",
    "4913", ".~lock.sheet.xlsx#",
])
def test_editor_temporary_and_lock_files_are_ignored(tmp_path: Path, name: str) -> None:
    assert ignored(tmp_path / name, [tmp_path])
    assert ignored(tmp_path / ".git" / "notes.md", [tmp_path])  # hidden folders, as `kb index` skips them
    assert not ignored(tmp_path / "notes.md", [tmp_path])
    assert not ignored(tmp_path / "年假~规定.txt", [tmp_path])


def test_change_queue_waits_for_quiet_then_releases_each_path_once() -> None:
    queue = ChangeQueue(debounce=3600, max_delay=3600)
    queue.add("a", "b", "a")
    assert queue.take() == []  # still inside the debounce
    queue.debounce = 0
    assert queue.take() == ["a", "b"]
    assert queue.take() == []
    queue = ChangeQueue(debounce=3600, max_delay=0)  # a file rewritten without pause is still applied
    queue.add("c")
    assert queue.take() == ["c"]


def _sources(kb: KnowledgeBase) -> dict[str, str]:
    """Indexed file name -> its text, read through the knowledge base's own store."""
    kb.store.refresh()
    out: dict[str, list[tuple[int, str]]] = {}
    for _, p in kb.store.payloads():
        out.setdefault(Path(p["source"]).name, []).append((p["index"], p["text"]))
    return {name: "".join(t for _, t in sorted(chunks)) for name, chunks in out.items()}


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[Path, KnowledgeBase, list[str]]]:
    """A folder with one file, a knowledge base watching it from a thread, and the watcher's log."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("年假规定：正式员工每年十五天。", encoding="utf-8")
    settings = load_settings()
    kb = KnowledgeBase.open(settings, "watched", HashEmbedder(256))
    lines: list[str] = []
    watcher = FolderWatcher(kb, [docs], debounce=0.3, log=lines.append)
    stop, started = threading.Event(), threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,), kwargs={"ready": lambda _: started.set()}, daemon=True)
    thread.start()
    assert started.wait(WAIT_S)  # the catch-up pass is done and the folder is being watched
    try:
        yield docs, kb, lines
    finally:
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive()
        kb.close()


def test_create_edit_move_delete_are_applied(watched: tuple[Path, KnowledgeBase, list[str]]) -> None:
    docs, kb, lines = watched
    assert _sources(kb) == {"a.txt": "年假规定：正式员工每年十五天。"}
    (docs / "b.md").write_text("# 报销\n\n发票须在三十天内提交。", encoding="utf-8")
    eventually(lambda: "b.md" in _sources(kb), "a created file is indexed")
    (docs / "a.txt").write_text("年假规定：正式员工每年二十天。", encoding="utf-8")
    eventually(lambda: _sources(kb).get("a.txt") == "年假规定：正式员工每年二十天。", "an edit is indexed")
    (docs / "sub").mkdir()
    (docs / "b.md").rename(docs / "sub" / "c.md")
    eventually(lambda: set(_sources(kb)) == {"a.txt", "c.md"}, "a moved file is re-pointed")
    eventually(lambda: any(line.startswith("moved: ") and line.endswith("c.md") for line in lines),
               "logged as a move (re-pointed, not embedded again)")
    (docs / "a.txt").unlink()
    eventually(lambda: set(_sources(kb)) == {"c.md"}, "a deleted file is removed")
    assert kb.search("发票", 1)[0].source.endswith("c.md")
    eventually(lambda: any(line.startswith("removed: ") and "a.txt" in line for line in lines), "one log line")
    manifest = read_manifest(kb.directory)
    assert manifest is not None and manifest.synced is not None


def test_temporary_files_are_never_indexed(watched: tuple[Path, KnowledgeBase, list[str]]) -> None:
    docs, kb, lines = watched
    for name in (".#a.txt", "a.txt~", "~$a.txt", "draft.md.swp", "x.txt.tmp"):
        (docs / name).write_text("临时文件 temporary", encoding="utf-8")
    # An editor's save: write a temp file, then rename it over the real one.
    (docs / "a.txt.tmp").write_text("年假规定：新版本。", encoding="utf-8")
    (docs / "a.txt.tmp").replace(docs / "a.txt")
    (docs / "marker.txt").write_text("marker", encoding="utf-8")
    eventually(lambda: "marker.txt" in _sources(kb), "a real file after the temporary ones is indexed")
    eventually(lambda: _sources(kb).get("a.txt") == "年假规定：新版本。", "the renamed-over file is indexed")
    assert set(_sources(kb)) == {"a.txt", "marker.txt"}
    assert not [line for line in lines if "临时" in line or "~" in line or ".swp" in line or ".#" in line]


# The child takes Ctrl-C as a terminal's would: a disposition or mask inherited from this test process
# (native libraries loaded by earlier tests in the same pytest run may block or ignore SIGINT in the
# calling thread; a child then never sees the signal) is reset in a small launcher that then execs the
# CLI. Not a ``preexec_fn``: that makes subprocess fork() the whole test process, and one that has loaded
# gRPC (the Milvus tests) can abort in gRPC's fork handler before the child runs.
_INTERRUPTIBLE = (
    "import os, signal, sys\n"
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])\n"
    "signal.signal(signal.SIGINT, signal.SIG_DFL)\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'kb_assistant', *sys.argv[1:]])\n"
)


def _watch(docs: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], list[str]]:
    command = [sys.executable, "-c", _INTERRUPTIBLE, "watch", str(docs), "--kb", "sub", "--debounce", "0.2",
               "--quiet"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    return proc, lines


def test_subprocess_catches_up_after_a_restart_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "keep.txt").write_text("保留的文件。", encoding="utf-8")
    (docs / "gone.txt").write_text("将被删除的文件。", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc, lines = _watch(docs, env)
    try:
        eventually(lambda: any("watching" in line for line in lines), "the first pass ends")
        (docs / "live.txt").write_text("运行时新增。", encoding="utf-8")
        eventually(lambda: any(line.endswith("live.txt (1 chunks)") for line in lines), "a live change is logged")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 0  # a bound for a loaded machine, not a speed check
        eventually(lambda: "stopped watching" in lines, "Ctrl-C says it stopped")
        assert not [line for line in lines if "Traceback" in line]
    finally:
        proc.kill()
        proc.wait()
    # While nothing watches: an edit, a deletion, a new file.
    (docs / "keep.txt").write_text("保留的文件，已修改。", encoding="utf-8")
    (docs / "gone.txt").unlink()
    (docs / "new.txt").write_text("停机期间新增。", encoding="utf-8")
    proc, lines = _watch(docs, env)
    try:
        eventually(lambda: any("watching" in line for line in lines), "the catch-up pass ends")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert any(line.endswith("updated: " + str((docs / "keep.txt").resolve()) + " (1 chunks)") for line in lines)
    with KnowledgeBase.open(load_settings(), "sub", HashEmbedder(256), create=False) as kb:
        expected = {"keep.txt": "保留的文件，已修改。", "live.txt": "运行时新增。", "new.txt": "停机期间新增。"}
        assert _sources(kb) == expected


WHOLE = re.compile(r"版本(\d{4})开始。(?:内容。){20}版本\1结束。")  # one whole version of the hot file


def _version(n: int) -> str:
    return f"版本{n:04d}开始。" + "内容。" * 20 + f"版本{n:04d}结束。"


def _hot_file(tmp_path: Path) -> tuple[Path, KnowledgeBase, list[str]]:
    """docs/hot.txt at version 0, a knowledge base "hot" whose embedder records every text it embeds,
    and that record."""
    docs = tmp_path / "docs"
    docs.mkdir()
    target = docs / "hot.txt"
    target.write_text(_version(0), encoding="utf-8")
    embedded: list[str] = []

    class Recording(HashEmbedder):
        def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
            embedded.extend(texts)
            return super().embed_documents(texts)

    return target, KnowledgeBase.open(load_settings(), "hot", Recording(256)), embedded


def _rewrite(target: Path, *, seconds: float, half: float, pause: float) -> int:
    """Save ``target`` over and over for ``seconds``: each save truncates it and writes a new version in
    two parts, the first half alone on disk for ``half`` seconds, then ``pause`` before the next save.
    Returns the number of saves (the last version's number)."""
    saves, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        saves += 1
        data = _version(saves).encode("utf-8")
        with open(target, "wb") as f:
            f.write(data[: len(data) // 2])
            f.flush()
            time.sleep(half)
            f.write(data[len(data) // 2 :])
        time.sleep(pause)
    return saves


def test_a_file_rewritten_50_times_a_second_is_indexed_once_settled(tmp_path: Path) -> None:
    """A file rewritten 50 times a second for 3 s, each save truncating it and writing it in two parts:
    the watcher keeps running, never indexes a half-written save (every text it embedded is one whole
    version), applies far fewer runs than saves, and once writing stops the store holds the final version."""
    target, kb, embedded = _hot_file(tmp_path)
    docs = target.parent
    lines: list[str] = []
    watcher = FolderWatcher(kb, [docs], debounce=1.0, log=lines.append)
    stop, started = threading.Event(), threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,), kwargs={"ready": lambda _: started.set()}, daemon=True)
    thread.start()
    try:
        assert started.wait(WAIT_S)
        saves = _rewrite(target, seconds=3.0, half=0.005, pause=0.015)
        eventually(lambda: _sources(kb).get("hot.txt") == _version(saves), "the final version is indexed")
        assert thread.is_alive()  # the watcher did not crash
        assert kb.count() == 1
        assert embedded and all(WHOLE.search(t) for t in embedded), [t for t in embedded if not WHOLE.search(t)]
        print(f"{saves} saves, {watcher.applied} apply runs, {len(embedded)} texts embedded")
        assert saves >= 30 and watcher.applied <= 3 and watcher.applied * 10 < saves
        assert not [line for line in lines if line.startswith("failed") or "Traceback" in line], lines
    finally:
        stop.set()
        thread.join(timeout=30)
        kb.close()
    assert not thread.is_alive()


def test_a_change_reads_only_the_changed_documents_payloads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An edit, a move and a deletion each read the stored payloads of the documents they touch, never
    every document's (which is what made a change cost the size of the knowledge base)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(40):
        (docs / f"f{i:02d}.txt").write_text(f"文件{i}：员工每年享有带薪年假。", encoding="utf-8")
    kb = KnowledgeBase.open(load_settings(), "cost", HashEmbedder(256))
    watcher = FolderWatcher(kb, [docs], log=lambda _: None)
    assert len(watcher.catch_up().by_status("added")) == 40
    read: list[str] = []
    payloads = kb.store.payloads

    def counting(where: Any = None) -> Iterator[tuple[int, dict[str, Any]]]:
        for rid, payload in payloads(where):
            read.append(Path(payload["source"]).name)
            yield rid, payload

    monkeypatch.setattr(kb.store, "payloads", counting)
    steps: list[set[str]] = []
    try:
        (docs / "f07.txt").write_text("文件七：年假改为二十天。", encoding="utf-8")
        watcher.apply([str(docs / "f07.txt")])
        steps.append(set(read))
        (docs / "f08.txt").rename(docs / "g08.txt")
        read.clear()
        watcher.apply([str(docs / "f08.txt"), str(docs / "g08.txt")])
        steps.append(set(read))
        (docs / "f09.txt").unlink()
        read.clear()
        watcher.apply([str(docs / "f09.txt")])
        steps.append(set(read))
    finally:
        monkeypatch.undo()
    try:
        sources = _sources(kb)
        assert sources["f07.txt"] == "文件七：年假改为二十天。"
        assert "g08.txt" in sources and "f08.txt" not in sources and "f09.txt" not in sources
        assert len(sources) == 39
    finally:
        kb.close()
    assert steps == [{"f07.txt"}, {"f08.txt"}, {"f09.txt"}]


def test_folders_moved_renamed_and_deleted_are_applied(watched: tuple[Path, KnowledgeBase, list[str]]) -> None:
    """A folder event names no file: the documents under it are found by one pass over the store."""
    import shutil

    docs, kb, lines = watched
    (docs / "dept").mkdir()
    (docs / "dept" / "x.txt").write_text("部门甲的制度。", encoding="utf-8")
    (docs / "dept" / "y.md").write_text("部门乙的制度。", encoding="utf-8")
    eventually(lambda: set(_sources(kb)) == {"a.txt", "x.txt", "y.md"}, "a new folder's files are indexed")
    (docs / "dept").rename(docs / "team")
    eventually(lambda: {Path(p["source"]).parent.name for _, p in kb.store.payloads()} == {"docs", "team"},
               "a renamed folder's files are re-pointed")
    eventually(lambda: sum(line.startswith("moved: ") for line in lines) == 2, "both logged as moves")
    (docs / "team").rename(docs.parent / "outside")  # moved out of the watched folder: one event, a folder's
    eventually(lambda: set(_sources(kb)) == {"a.txt"}, "a folder moved away is removed")
    (docs / "more").mkdir()
    (docs / "more" / "z.txt").write_text("待删除。", encoding="utf-8")
    eventually(lambda: "z.txt" in _sources(kb), "indexed")
    shutil.rmtree(docs / "more")
    eventually(lambda: set(_sources(kb)) == {"a.txt"}, "a deleted folder is removed")
    (docs / "notes.md").mkdir()  # a folder named like a file: gone, it is still looked for as a folder
    (docs / "notes.md" / "w.txt").write_text("像文件名的文件夹。", encoding="utf-8")
    eventually(lambda: "w.txt" in _sources(kb), "indexed")
    (docs / "notes.md").rename(docs.parent / "elsewhere.md")
    eventually(lambda: set(_sources(kb)) == {"a.txt"}, "a folder named like a file, moved away, is removed")


def test_changes_to_files_of_types_never_indexed_are_not_queued(tmp_path: Path) -> None:
    """A deleted build.log, or the suffix-less temporary file `sed -i` renames over its target, names a
    path that is gone: queued, it could only be told from a folder by a pass over every document."""
    docs = tmp_path / "docs"
    docs.mkdir()
    kb = KnowledgeBase.open(load_settings(), "types", HashEmbedder(256))
    try:
        watcher = FolderWatcher(kb, [docs], debounce=0, log=lambda _: None)
        watcher.notice(str(docs / "build.log"), str(docs / "sedX3kQ9a"), str(docs / "notes.md~"))
        assert watcher.queue.take() == []
        watcher.notice(str(docs / "sedX3kQ9a"), str(docs / "notes.md"))  # `sed -i`: its temp file renamed over
        assert watcher.queue.take() == [str(docs / "notes.md")]
        watcher.notice(str(docs / "old"), str(docs / "new"), folder=True)
        assert watcher.queue.take() == [str(docs / "old"), str(docs / "new")]
    finally:
        kb.close()


def test_a_file_rewritten_past_the_longest_wait_is_never_read_half_written(tmp_path: Path) -> None:
    """A file rewritten 50 times a second for longer than ``max_delay`` (so its changes are taken while
    it is still being written), each save half on disk most of the time: the settle check puts it
    back, with one log line, until it stops changing; every text embedded is one whole version, and
    the final one is searchable."""
    target, kb, embedded = _hot_file(tmp_path)
    docs = target.parent
    lines: list[str] = []
    # settle 1 s: a writer thread descheduled that long between the halves of a save (a loaded CI machine)
    # would look done; the save it stalled in would be indexed, then replaced once writing resumed.
    watcher = FolderWatcher(kb, [docs], debounce=0.3, max_delay=0.5, settle=1.0, log=lines.append)
    stop, started = threading.Event(), threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,), kwargs={"ready": lambda _: started.set()}, daemon=True)
    thread.start()
    try:
        assert started.wait(WAIT_S)
        saves = _rewrite(target, seconds=4.0, half=0.015, pause=0.005)  # the first half for 15 ms of every 20
        eventually(lambda: _sources(kb).get("hot.txt") == _version(saves), "the final version is indexed")
        assert embedded and all(WHOLE.search(t) for t in embedded), [t for t in embedded if not WHOLE.search(t)]
        assert not [line for line in lines if line.startswith("failed") or "Traceback" in line], lines
        held = [line for line in lines if line.startswith("still being written: ")]
        assert held and held[0] == f"still being written: {target.resolve()} (indexed once it stops changing)"
        assert len(held) < 5, lines  # one line while it keeps changing, not one per look
    finally:
        stop.set()
        thread.join(timeout=30)
        kb.close()
    assert not thread.is_alive()
