"""A deterministic stand-in model for tests and demos: quotes the first sentence of source [1]."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence

from .base import ChatMessage, Generator

_SOURCE_RE = re.compile(r"^\[(\d+)\][^\n]*\n(.+?)(?:\n\n|\Z)", re.MULTILINE | re.DOTALL)


class EchoGenerator(Generator):
    """Counts one token per character; answers with the first sentence of the first source, cited."""

    name = "echo"

    def __init__(self, *, context_window: int = 2048) -> None:
        self.context_window = context_window

    def render(self, messages: Sequence[ChatMessage]) -> str:
        return "".join(f"<{m.role}>{m.content}</{m.role}>" for m in messages) + "<assistant>"

    def count_tokens(self, text: str) -> int:
        return len(text)

    def _stream_prompt(
        self, prompt: str, *, max_tokens: int, temperature: float, stop_event: threading.Event | None,
    ) -> Iterator[str]:
        last_user = prompt.rsplit("<user>", 1)[-1]
        match = _SOURCE_RE.search(last_user)
        if match:
            sentence = re.split(r"(?<=[。！？.!?])\s*", match.group(2).strip())[0]
            answer = f"{sentence} [{match.group(1)}]"
        else:
            answer = "I don't know."
        for piece in re.findall(r".{1,4}", answer[:max_tokens], re.DOTALL):
            if stop_event is not None and stop_event.is_set():
                return
            yield piece
