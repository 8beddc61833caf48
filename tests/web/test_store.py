"""The app's SQLite file: conversations per knowledge base, turns, feedback, indexing runs, migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kb_assistant.errors import KBError
from kb_assistant.types import Answer, Citation, FileOutcome, IndexReport, Source
from kb_assistant.web.records import ClaimView
from kb_assistant.web.store import MIGRATIONS, AppStore


def answer(question: str = "年假有几天？") -> Answer:
    src = Source(7, "第一句。正式员工每年享有十五天带薪年假。", "/docs/规定.pdf", 10, 30, 0.83, page=2)
    weak = Source(8, "打赏 扫一扫", "/docs/blog.html", 0, 6, 0.23)
    return Answer(question, "十五天[1]。还有奖金。", (src, weak), (Citation(1, src, False, 0.9, 14, 30),), 120)


def test_conversations_survive_reopening_and_keep_their_turns(tmp_path: Path) -> None:
    store = AppStore(tmp_path / "app.sqlite")
    conv = store.create_conversation("policies")
    other = store.create_conversation("handbook")
    first = store.add_turn(conv.id, "年假有几天？")
    second = store.add_turn(conv.id, "😀 and 病假?")
    store.finish_turn(first, answer(), (ClaimView("还有奖金。", False),))

    again = AppStore(tmp_path / "app.sqlite")  # a restart
    assert [c.id for c in again.conversations("policies")] == [conv.id]
    assert [c.id for c in again.conversations("handbook")] == [other.id]
    assert again.conversation(conv.id).title == "年假有几天？"  # named after its first question
    t1, t2 = again.turns(conv.id)
    assert (t1.id, t1.status, t2.id, t2.status, t2.question) == (first, "done", second, "queued", "😀 and 病假?")
    assert t1.answer == answer() and t1.claims == (ClaimView("还有奖金。", False),)
    assert t2.answer is None and t2.pending


def test_rename_delete_and_interrupted_turns(tmp_path: Path) -> None:
    store = AppStore(tmp_path / "app.sqlite")
    conv = store.create_conversation("kb")
    turn = store.add_turn(conv.id, "q")
    store.rename(conv.id, "  Leave   policy  ")
    assert store.conversation(conv.id).title == "Leave policy"
    with pytest.raises(KBError, match="needs a title"):
        store.rename(conv.id, "   ")
    assert store.mark_interrupted(turn)
    assert "restarted" in store.turn(turn).error and not store.turn(turn).pending
    done = store.add_turn(conv.id, "q2")
    store.finish_turn(done, answer())
    assert not store.mark_interrupted(done)  # a finished answer is never overwritten
    store.delete_conversation(conv.id)
    assert store.conversations("kb") == [] and store.turn(turn) is None


def test_feedback_is_a_copy_that_outlives_its_conversation(tmp_path: Path) -> None:
    store = AppStore(tmp_path / "app.sqlite")
    conv = store.create_conversation("kb")
    turn_id = store.add_turn(conv.id, "年假有几天？")
    with pytest.raises(KBError, match="no answer yet"):
        store.give_feedback(store.turn(turn_id), "kb", "helpful")
    store.finish_turn(turn_id, answer())
    store.give_feedback(store.turn(turn_id), "kb", "wrong")
    store.give_feedback(store.turn(turn_id), "kb", "helpful")  # changed mind: one record, the last rating
    with pytest.raises(KBError, match="helpful, wrong"):
        store.give_feedback(store.turn(turn_id), "kb", "meh")
    store.delete_conversation(conv.id)
    (fb,) = store.feedback()
    assert (fb.turn_id, fb.kb, fb.rating, fb.answer) == (turn_id, "kb", "helpful", answer())
    assert store.feedback(rating="wrong") == [] and store.feedback(kb="other") == []


def test_index_runs_record_failures_with_reasons(tmp_path: Path) -> None:
    store = AppStore(tmp_path / "app.sqlite")
    report = IndexReport([FileOutcome("/u/a.txt", "added", 3), FileOutcome("/u/scan.pdf", "failed", 0, "no text")])
    store.record_index_run("kb", report, ["evil.exe: files of type .exe cannot be indexed"])
    run = store.last_index_run("kb")
    assert run.failed == [("/u/scan.pdf", "no text"), ("evil.exe", "files of type .exe cannot be indexed")]
    assert "1 added" in run.summary and store.last_index_run("other") is None


def test_migrations_are_numbered_and_a_newer_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite"
    AppStore(path)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.commit()
    db.close()
    with pytest.raises(KBError, match="newer kb-assistant"):
        AppStore(path)
