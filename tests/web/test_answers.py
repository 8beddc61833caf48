"""Answer workers: questions are stored first, answered in order in a thread, never lost or mixed up."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from kb_assistant.app import open_kb
from kb_assistant.assistant import Assistant
from kb_assistant.errors import KBError
from kb_assistant.generators.base import ChatMessage
from kb_assistant.generators.echo import EchoGenerator
from kb_assistant.settings import load_settings
from kb_assistant.web.answers import Workers
from kb_assistant.web.store import AppStore


class GatedEcho(EchoGenerator):
    """The echo model, holding each answer after its first piece until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.first_piece = threading.Event()

    def _stream_prompt(self, prompt: str, **kw: Any) -> Iterator[str]:
        for i, piece in enumerate(super()._stream_prompt(prompt, **kw)):
            yield piece
            if i == 0:
                self.first_piece.set()
                self.gate.wait(30)


@pytest.fixture
def setup(tmp_path: Path, isolated_data_dir: Path) -> Iterator[tuple[Any, GatedEcho, Any, Any]]:
    settings = load_settings()
    kb = open_kb(settings, "kb")
    doc = tmp_path / "leave.txt"
    doc.write_text("正式员工每年享有十五天带薪年假。病假每年十天。", encoding="utf-8")
    kb.index_paths([doc])
    store = AppStore.for_settings(settings)
    gen = GatedEcho()
    histories: list[list[str]] = []

    def start(question: str, history: Sequence[ChatMessage]) -> Any:
        histories.append([m.content for m in history])
        return Assistant(kb, gen, settings).ask(question, history)

    yield store, gen, start, histories
    gen.gate.set()
    kb.close()


def test_a_question_sent_while_another_is_answered_waits_and_both_complete(setup: Any) -> None:
    store, gen, start, histories = setup
    conv = store.create_conversation("kb")
    worker = Workers(store).get(conv.id)
    first = worker.submit("年假有几天？", start, gen)
    assert gen.first_piece.wait(30)
    second = worker.submit("病假呢？", start, gen)
    assert [t.status for t in store.turns(conv.id)] == ["running", "queued"]  # both stored already
    assert first.text and not second.started and worker.live(second.turn_id) is second
    gen.gate.set()
    assert first.finished.wait(30) and second.finished.wait(30)
    t1, t2 = store.turns(conv.id)
    assert (t1.question, t1.status, t2.question, t2.status) == ("年假有几天？", "done", "病假呢？", "done")
    assert "十五天" in t1.answer.text and t1.answer.citations
    assert histories == [[], ["年假有几天？", t1.answer.text]]  # the second saw the first as history
    assert not worker.busy


def test_stopping_keeps_what_was_written_and_a_queued_question(setup: Any) -> None:
    store, gen, start, _ = setup
    conv = store.create_conversation("kb")
    worker = Workers(store).get(conv.id)
    running = worker.submit("年假有几天？", start, gen)
    assert gen.first_piece.wait(30)
    queued = worker.submit("病假呢？", start, gen)
    assert running.waiting_for_model is False  # it has text: it is being written, not waiting
    worker.stop(queued.turn_id)
    worker.stop(running.turn_id)
    gen.gate.set()
    assert queued.finished.wait(30)
    t1, t2 = store.turns(conv.id)
    assert t1.status == "stopped" and t1.answer is not None and t1.answer.text.startswith(running.text)
    assert len(t1.answer.text) < len("正式员工每年享有十五天带薪年假。 [1]")
    assert (t2.question, t2.status, t2.answer) == ("病假呢？", "stopped", None)


def test_a_failed_answer_is_recorded_and_the_next_one_goes_on(setup: Any) -> None:
    store, gen, start, _ = setup
    gen.gate.set()
    conv = store.create_conversation("kb")
    worker = Workers(store).get(conv.id)

    def broken(question: str, history: Sequence[ChatMessage]) -> Any:
        raise KBError("the model file is gone: set KB_MODEL_PATH")

    bad = worker.submit("年假有几天？", broken, gen)
    good = worker.submit("病假呢？", start, gen)
    assert bad.finished.wait(30) and good.finished.wait(30)
    t1, t2 = store.turns(conv.id)
    assert (t1.status, t1.error) == ("error", "the model file is gone: set KB_MODEL_PATH")
    assert t2.status == "done" and t2.answer is not None and t2.answer.text


def test_waiting_for_the_model_while_another_answer_holds_it(setup: Any) -> None:
    store, gen, start, _ = setup
    conv_a, conv_b = store.create_conversation("kb"), store.create_conversation("kb")
    workers = Workers(store)
    a = workers.get(conv_a.id).submit("年假有几天？", start, gen)
    assert gen.first_piece.wait(30)
    hold = threading.Event()

    def blocked(question: str, history: Sequence[ChatMessage]) -> Any:
        hold.wait(30)  # as a stream waits for the model's lock
        return start(question, history)

    b = workers.get(conv_b.id).submit("病假呢？", blocked, gen)
    for _ in range(300):
        if b.started:
            break
        threading.Event().wait(0.01)
    assert b.waiting_for_model and not a.waiting_for_model
    assert workers.live(conv_b.id, b.turn_id) is b and workers.live(conv_a.id, b.turn_id) is None
    hold.set()
    gen.gate.set()
    assert b.finished.wait(30) and store.turn(b.turn_id).status == "done"
