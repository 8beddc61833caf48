"""The generator seam: chat messages in, streamed text out, with the model's own token counting."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


class Generator(ABC):
    """One required streaming method plus the model's tokenizer and window.

    ``render`` turns messages into the exact text the model is fed (chat template applied), so
    ``count_prompt`` is the true prompt size that the budget is checked against.
    """

    name: str = "generator"
    context_window: int = 2048
    # Whether the model reliably writes [n] markers when asked; small models do not (see prompt.py).
    follows_citation_instructions: bool = True

    @abstractmethod
    def render(self, messages: Sequence[ChatMessage]) -> str:
        """The prompt text after the chat template, ending where the assistant's answer starts."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` by the model's own tokenizer (special tokens parsed)."""

    @abstractmethod
    def stream_prompt(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float = 0.1,
        stop_event: threading.Event | None = None,
    ) -> Iterator[str]:
        """Yield text pieces of the continuation of a rendered prompt; stops early if ``stop_event`` is set."""

    def count_prompt(self, messages: Sequence[ChatMessage]) -> int:
        return self.count_tokens(self.render(messages))

    def stream(self, messages: Sequence[ChatMessage], **kw: object) -> Iterator[str]:
        return self.stream_prompt(self.render(messages), **kw)  # type: ignore[arg-type]

    def generate(self, messages: Sequence[ChatMessage], **kw: object) -> str:
        return "".join(self.stream(messages, **kw))
