"""One chat completion, without HTTP: prepared (retrieval, prompt) and then generated in a worker thread,
through the same path as ``kb ask`` (``Assistant.ask`` then ``finish_answer``).

The route turns the pieces into server-sent events or one JSON object; this module owns what the
OpenAI parameters mean here: ``max_tokens`` and ``temperature`` become the per-request answer settings,
``stop`` cuts the text (the model is stopped there), and ``usage`` is counted with the model's tokenizer."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..assistant import AnswerStream, Assistant, finish_answer
from ..generators.base import ChatMessage, Generator
from ..types import Answer, Source
from .errors import APIError
from .state import ServerState

KB_PREFIX = "kb:"


@dataclass
class ChatParams:
    """The OpenAI request fields that shape an answer, already validated."""

    model: str
    messages: list[ChatMessage]
    temperature: float | None = None
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)


class StopCutter:
    """Passes text through until a stop sequence appears; holds back a tail that could start one."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.hold = max((len(s) for s in self.stops), default=1) - 1
        self.buffer = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        if not self.stops:
            return piece
        self.buffer += piece
        cut = min((i for i in (self.buffer.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            out, self.buffer, self.stopped = self.buffer[:cut], "", True
            return out
        keep = len(self.buffer) - self.hold
        out, self.buffer = (self.buffer[:keep], self.buffer[keep:]) if keep > 0 else ("", self.buffer)
        return out

    def flush(self) -> str:
        out, self.buffer = self.buffer, ""
        return out


class ChatRun:
    """A prepared completion: iterate ``pieces()`` (blocking, in a worker thread), then ``finish()``.

    Setting ``stop_event`` (the client left) ends generation at the next token and frees the model."""

    def __init__(self, state: ServerState, params: ChatParams) -> None:
        self.state = state
        self.params = params
        self.generator: Generator = state.generator
        self.stop_event = threading.Event()
        self.text: list[str] = []
        self.finish_reason = "stop"
        self.cut = False  # the text was cut short (a stop sequence, or the client left)
        self.kb_name: str | None = None
        self._stream: AnswerStream | None = None
        self._question = ""
        self.prompt_tokens = 0
        self.completion_tokens = 0  # counted once, when pieces() has the whole text
        window = state.context_window()
        if params.max_tokens is not None and params.max_tokens >= window:
            raise APIError(400, f"max_tokens {params.max_tokens} is over the model's context window of {window} "
                           "tokens (prompt and answer together): ask for fewer", code="max_tokens_too_large",
                           param="max_tokens")
        self.max_tokens = params.max_tokens or state.settings.max_new_tokens
        self.temperature = state.settings.temperature if params.temperature is None else params.temperature

    def prepare(self) -> None:
        """Retrieval and prompt packing (kb models), or the prompt count (the bare model); no generation."""
        messages = self.params.messages
        if self.params.model.startswith(KB_PREFIX):
            self.kb_name = self.params.model[len(KB_PREFIX):]
            kb = self.state.kb(self.kb_name)
            if messages[-1].role != "user":
                raise APIError(400, "the last message must be the user's question (role 'user')",
                               code="invalid_request", param="messages")
            history = [m for m in messages[:-1] if m.role in ("user", "assistant")]
            self._question = messages[-1].content
            cfg = self.state.settings.model_copy(update={"max_new_tokens": self.max_tokens,
                                                          "temperature": self.temperature})
            self._stream = Assistant(kb, self.generator, cfg).ask(self._question, history)
            self.stop_event = self._stream.stop_event
            self.prompt_tokens = self._stream.prompt.prompt_tokens
        else:
            self.prompt_tokens = self.generator.count_prompt(messages)
            if self.prompt_tokens + self.max_tokens > self.state.context_window():
                raise APIError(400, f"the messages ({self.prompt_tokens} tokens) and max_tokens ({self.max_tokens}) "
                               f"do not fit the model's window of {self.state.context_window()} tokens: send fewer "
                               "or shorter messages, or a smaller max_tokens", code="context_length_exceeded",
                               param="messages")

    def pieces(self) -> Iterator[str]:
        """The answer's text as the model writes it, cut at a stop sequence; ends early on ``stop_event``."""
        if self._stream is not None:
            source: Iterator[str] = iter(self._stream)
        else:
            source = self.generator.stream(self.params.messages, max_tokens=self.max_tokens,
                                           temperature=self.temperature, stop_event=self.stop_event)
        cutter = StopCutter(self.params.stop)
        for piece in source:
            if self.stop_event.is_set():
                break
            out = cutter.feed(piece)
            if out:
                self.text.append(out)
                yield out
            if cutter.stopped:
                self.stop_event.set()  # the model stops at its next token; drained below
                break
        self.cut = cutter.stopped or self.stop_event.is_set()
        for _ in source:  # let the backend end its work and release the model
            pass
        tail = cutter.flush()
        if tail and not cutter.stopped:
            self.text.append(tail)
            yield tail
        self.completion_tokens = self.generator.count_tokens("".join(self.text))
        if not cutter.stopped and self.completion_tokens >= self.max_tokens:
            self.finish_reason = "length"

    def finish(self) -> tuple[str, dict[str, Any]]:
        """The final text (citations resolved, as ``kb ask`` shows it) and the extra response fields."""
        raw = "".join(self.text)
        usage = {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        extra: dict[str, Any] = {"usage": usage}
        if self._stream is None:
            return raw, extra
        s = self._stream
        whole = s.answer is not None and not self.cut  # the stream finished it on exactly this text
        answer = s.answer if whole and s.answer is not None else finish_answer(
            self._question, raw, s.prompt, found=s.found, embedder=s.embedder, sources=s.sources)
        extra.update(kb_fields(answer))
        return answer.text, extra


def kb_fields(answer: Answer) -> dict[str, Any]:
    """Sources and citations as extra response fields: each source as ``source_fields`` gives it and (when
    cited) its support and the supporting span."""
    cited = {c.number: c for c in answer.citations}
    sources = []
    for n, s in enumerate(answer.sources, 1):
        c = cited.get(n)
        sources.append({**source_fields(n, s), "cited": c is not None,
                        "support": c.support if c else None, "inferred": c.inferred if c else None,
                        "quote": [c.quote_start, c.quote_end] if c else None})
    return {"kb_sources": sources, "kb_found": answer.found,
            "kb_claims": [c.to_dict() for c in answer.claims]}


def source_fields(number: int, source: Source) -> dict[str, Any]:
    """A source as the API shows it (chat and search alike): ``Source.to_dict``, the one record of its
    fields (file, page, span, heading, text, stale), numbered as the ``[n]`` markers, with its score under
    the API's documented name ``relevance``."""
    fields = {"number": number, **source.to_dict()}
    fields["relevance"] = fields.pop("score")
    return fields


def plain_text(content: Any) -> str:
    """A message's content as text: a string, or the text parts of a list of content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == "text":
            parts.append(str(part.get("text", "")))
        else:
            raise APIError(400, "only text content parts are supported (type 'text')", code="invalid_request",
                           param="messages")
    return "".join(parts)
