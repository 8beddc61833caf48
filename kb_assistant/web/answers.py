"""Answers written in background threads, one conversation's turns in order, apart from page runs.

Streamlit stops a page's script when the user sends the next message, so an answer streamed inside
the script was lost with its question. Here a question is stored first, then answered by a worker
thread that outlives page runs and reloads; the page only shows the worker's progress. A question
sent while another of the same conversation is being answered waits in the queue behind it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import KBError
from ..generators.base import ChatMessage
from .records import claims_of
from .store import AppStore

# question, history -> an AnswerStream (iterate for pieces, .result() for the Answer, .stop_event)
StartAnswer = Callable[[str, Sequence[ChatMessage]], Any]


@dataclass
class LiveTurn:
    """What the page shows of a turn being answered: the text so far and whether it has started."""

    turn_id: int
    question: str
    start: StartAnswer
    generator: Any = None  # for the "waiting for the model" state (``busy`` once the lock lands)
    text: str = ""
    started: bool = False
    stop: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def waiting_for_model(self) -> bool:
        """Started but nothing written yet while another answer holds the model."""
        return self.started and not self.text and bool(getattr(self.generator, "busy", False))


class ConversationWorker:
    """Answers the queued turns of one conversation, oldest first, in its own daemon thread."""

    def __init__(self, store: AppStore, conversation_id: int) -> None:
        self.store = store
        self.conversation_id = conversation_id
        self.queue: deque[LiveTurn] = deque()
        self.current: LiveTurn | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, question: str, start: StartAnswer, generator: Any = None) -> LiveTurn:
        """Store the question at once (it is never lost), then queue it for answering."""
        with self._lock:  # held while storing, so no page sees the turn stored but not yet queued
            turn_id = self.store.add_turn(self.conversation_id, question)
            live = LiveTurn(turn_id, question, start, generator)
            self.queue.append(live)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=f"answer-{self.conversation_id}",
                                                daemon=True)
                self._thread.start()
        return live

    def live(self, turn_id: int) -> LiveTurn | None:
        with self._lock:
            if self.current is not None and self.current.turn_id == turn_id:
                return self.current
            return next((t for t in self.queue if t.turn_id == turn_id), None)

    @property
    def busy(self) -> bool:
        with self._lock:
            return self.current is not None or bool(self.queue)

    def stop(self, turn_id: int) -> None:
        """Stop a running answer (its text so far is kept) or drop a queued one (its question stays)."""
        with self._lock:
            for t in self.queue:
                if t.turn_id == turn_id:
                    t.stop.set()
            if self.current is not None and self.current.turn_id == turn_id:
                self.current.stop.set()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self.queue:
                    self.current = None
                    return
                live = self.current = self.queue.popleft()
            try:
                self._answer(live)
            finally:
                live.finished.set()

    def _history(self, before: int) -> list[ChatMessage]:
        out: list[ChatMessage] = []
        for t in self.store.turns(self.conversation_id):
            if t.id < before and t.answer is not None and t.answer.found:
                out += [ChatMessage("user", t.question), ChatMessage("assistant", t.answer.text)]
        return out

    def _answer(self, live: LiveTurn) -> None:
        if live.stop.is_set():
            self.store.set_status(live.turn_id, "stopped", "stopped before it started")
            return
        try:
            self.store.set_status(live.turn_id, "running")
            live.started = True
            stream = live.start(live.question, self._history(live.turn_id))
            for piece in stream:
                live.text += piece
                if live.stop.is_set():
                    # The model stops at its next token; draining it ends the stream (and frees the
                    # model) the ordinary way, and the answer keeps what was written.
                    stream.stop_event.set()
            answer = stream.result()
            self.store.finish_turn(live.turn_id, answer, claims_of(answer),
                                   status="stopped" if live.stop.is_set() else "done")
        except KBError as exc:
            self.store.set_status(live.turn_id, "error", str(exc))
        except Exception as exc:  # noqa: BLE001 - shown on the turn; the worker goes on with the next
            self.store.set_status(live.turn_id, "error", f"the answer failed: {type(exc).__name__}: {exc}")


class Workers:
    """One worker per conversation, shared by every browser session of the process."""

    def __init__(self, store: AppStore) -> None:
        self.store = store
        self._workers: dict[int, ConversationWorker] = {}
        self._lock = threading.Lock()

    def get(self, conversation_id: int) -> ConversationWorker:
        with self._lock:
            return self._workers.setdefault(conversation_id, ConversationWorker(self.store, conversation_id))

    def live(self, conversation_id: int, turn_id: int) -> LiveTurn | None:
        with self._lock:
            worker = self._workers.get(conversation_id)
        return worker.live(turn_id) if worker else None
