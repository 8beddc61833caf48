"""The generator seam: chat messages in, streamed text out, one generation at a time per loaded model."""

from __future__ import annotations

import gc
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]

# The public streaming methods take the guard; a backend that overrode them would slip past it.
_GUARDED = ("stream", "stream_prompt", "generate")


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


class Generator(ABC):
    """One required streaming method plus the model's tokenizer and window.

    ``render`` turns messages into the exact text the model is fed (chat template applied), so
    ``count_prompt`` is the true prompt size that the budget is checked against.

    A loaded model is shared by every caller in the process (web sessions, CLI chat, an API server), and
    llama.cpp aborts the whole process when two threads decode on one context (GGML_ASSERT). So the base
    class owns the guard: ``stream``/``stream_prompt`` take it when the first piece is asked for and give
    it back when the stream ends, is stopped (``stop_event``), closed, or garbage-collected. Backends
    implement the private ``_stream_prompt`` (and optionally ``_stream_messages``), which only the guarded
    methods call; overriding the public ones is refused at class creation.
    """

    name: str = "generator"
    context_window: int = 2048
    # Whether the model reliably writes [n] markers when asked; small models do not (see prompt.py).
    follows_citation_instructions: bool = True
    # Streams the backend may run at once: 1 for an in-process model; a server schedules its own.
    max_streams: int = 1
    _slots: threading.BoundedSemaphore
    _count_lock: threading.Lock
    _holders: list[int]  # ident of the thread that took each held slot

    def __new__(cls, *args: Any, **kwargs: Any) -> Generator:
        # Here, not in __init__, so that no backend can forget it.
        self = super().__new__(cls)
        self._slots = threading.BoundedSemaphore(cls.max_streams)
        self._count_lock = threading.Lock()
        self._holders = []
        return self

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for method in _GUARDED:
            if method in cls.__dict__:
                raise TypeError(f"{cls.__name__} overrides {method}(): implement _stream_prompt / "
                                "_stream_messages instead, so the one-generation-at-a-time guard stays in front")

    # -- what a backend implements ------------------------------------------------------------------------

    @abstractmethod
    def render(self, messages: Sequence[ChatMessage]) -> str:
        """The prompt text after the chat template, ending where the assistant's answer starts."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` by the model's own tokenizer (special tokens parsed); safe during a stream."""

    @abstractmethod
    def _stream_prompt(
        self, prompt: str, *, max_tokens: int, temperature: float, stop_event: threading.Event | None,
    ) -> Iterator[str]:
        """Yield pieces of the continuation of a rendered prompt; stop early if ``stop_event`` is set.

        Called only with the guard held; closing the returned iterator must end the model's work."""

    def _stream_messages(
        self, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float,
        stop_event: threading.Event | None,
    ) -> Iterator[str]:
        """Answer chat messages; backends whose server applies the template itself override this."""
        return self._stream_prompt(self.render(messages), max_tokens=max_tokens, temperature=temperature,
                                   stop_event=stop_event)

    # -- the guarded public methods -------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while streams hold every slot of the model (a new stream would wait)."""
        return len(self._holders) >= self.max_streams

    def stream_prompt(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float = 0.1,
        stop_event: threading.Event | None = None,
        on_wait: Callable[[], None] | None = None,
    ) -> Iterator[str]:
        """Yield text pieces of the continuation of a rendered prompt, once the model is free.

        ``on_wait`` is called (once, in the consumer's thread) if the model is busy and this stream has to
        wait its turn; setting ``stop_event`` while waiting gives up without generating."""
        return self._guarded(lambda: self._stream_prompt(
            prompt, max_tokens=max_tokens, temperature=temperature, stop_event=stop_event), stop_event, on_wait)

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float = 0.1,
        stop_event: threading.Event | None = None,
        on_wait: Callable[[], None] | None = None,
    ) -> Iterator[str]:
        """Yield text pieces of the answer to ``messages``, once the model is free (see ``stream_prompt``)."""
        return self._guarded(lambda: self._stream_messages(
            messages, max_tokens=max_tokens, temperature=temperature, stop_event=stop_event), stop_event, on_wait)

    def generate(self, messages: Sequence[ChatMessage], **kw: Any) -> str:
        return "".join(self.stream(messages, **kw))

    def count_prompt(self, messages: Sequence[ChatMessage]) -> int:
        return self.count_tokens(self.render(messages))

    @contextmanager
    def exclusive(self, *, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
        """Hold the model outside a stream (a backend's raw model access, e.g. for training or logits)."""
        holder = self._acquire(None, on_wait)
        assert holder is not None  # only a stop_event makes it give up
        try:
            yield
        finally:
            self._release(holder)

    # -- the guard --------------------------------------------------------------------------------------

    def _guarded(
        self, start: Callable[[], Iterator[str]], stop_event: threading.Event | None,
        on_wait: Callable[[], None] | None,
    ) -> Iterator[str]:
        holder = self._acquire(stop_event, on_wait)
        if holder is None:
            return
        try:
            pieces = start()
            try:
                yield from pieces
            finally:
                close = getattr(pieces, "close", None)
                if close is not None:
                    close()  # the backend's cleanup (joining its thread, ending the decode) runs under the guard
        finally:
            self._release(holder)

    def _acquire(self, stop_event: threading.Event | None, on_wait: Callable[[], None] | None) -> int | None:
        """Take a slot, waiting if needed; the holder's thread ident, or None if ``stop_event`` was set while
        waiting. A thread that would wait on a slot it holds itself gets an error instead of a deadlock."""
        me = threading.get_ident()
        if not self._slots.acquire(blocking=False):
            if me in self._holders and self.max_streams == 1:
                gc.collect()  # an abandoned stream caught in a reference cycle is closed by the collector
                if self._slots.acquire(blocking=False):
                    with self._count_lock:
                        self._holders.append(me)
                    return me
                raise RuntimeError(f"this thread is already streaming from {self.name}: finish or close that "
                                   "stream before starting another")
            if on_wait is not None:
                on_wait()
            if stop_event is None:
                self._slots.acquire()
            else:
                while not self._slots.acquire(timeout=0.05):
                    if stop_event.is_set():
                        return None
        with self._count_lock:
            self._holders.append(me)
        return me

    def _release(self, holder: int) -> None:
        with self._count_lock:
            self._holders.remove(holder)
        self._slots.release()
