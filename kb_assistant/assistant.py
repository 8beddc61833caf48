"""Question in, streamed answer with numbered, resolved citations out."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from .attribution import attribute, insert_markers
from .citations import resolve_citations
from .errors import EmptyKnowledgeBaseError
from .generators.base import ChatMessage, Generator
from .knowledge_base import KnowledgeBase
from .prompt import SYSTEM_PROMPT_CITE, SYSTEM_PROMPT_PLAIN, BuiltPrompt, build_prompt
from .settings import Settings
from .types import Answer, Citation


def retrieval_query(question: str, history: Sequence[ChatMessage]) -> str:
    """Follow-ups like "那第二条呢？" carry little to search with: prepend the previous question."""
    previous = [m.content for m in history if m.role == "user"]
    return f"{previous[-1]}\n{question}" if previous else question


def finish_answer(question: str, raw: str, prompt: BuiltPrompt) -> Answer:
    """Resolve the model's markers; if it cited nothing, attribute sentences to sources instead."""
    text, citations = resolve_citations(raw, prompt.sources)
    if not citations and prompt.sources:
        spans = attribute(text, question, prompt.sources)
        text = insert_markers(text, spans)
        best: dict[int, float] = {}
        for a in spans:
            if a.number:
                best[a.number] = max(best.get(a.number, 0.0), a.support)
        citations = tuple(
            Citation(n, prompt.sources[n - 1], inferred=True, support=round(s, 3)) for n, s in best.items()
        )
    return Answer(question, text, prompt.sources, citations, prompt.prompt_tokens)


class AnswerStream:
    """Iterate for text pieces as the model writes; ``answer`` is set once iteration ends."""

    def __init__(self, question: str, prompt: BuiltPrompt, pieces: Iterator[str]) -> None:
        self.question = question
        self.prompt = prompt
        self._pieces = pieces
        self.stop_event = threading.Event()
        self.answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        text = []
        for piece in self._pieces:
            text.append(piece)
            yield piece
        self.answer = finish_answer(self.question, "".join(text), self.prompt)

    def result(self) -> Answer:
        """Drain the stream (if not yet) and return the finished answer."""
        if self.answer is None:
            for _ in self:
                pass
        assert self.answer is not None
        return self.answer


class Assistant:
    """Ties a knowledge base to a generator under one settings object."""

    def __init__(self, kb: KnowledgeBase, generator: Generator, settings: Settings) -> None:
        self.kb = kb
        self.generator = generator
        self.settings = settings

    def prepare(self, question: str, history: Sequence[ChatMessage] = ()) -> BuiltPrompt:
        """Retrieve and pack the prompt, without calling the model."""
        if self.kb.count() == 0:
            raise EmptyKnowledgeBaseError(
                f"knowledge base {self.kb.name!r} is empty: add documents with "
                f"`kb index PATH --kb {self.kb.name}` first"
            )
        sources = self.kb.search(retrieval_query(question, history), self.settings.top_k)
        mode = self.settings.cite_mode
        ask_to_cite = mode == "ask" or (mode == "auto" and self.generator.follows_citation_instructions)
        return build_prompt(
            self.generator,
            question,
            sources,
            history=history,
            max_new_tokens=self.settings.max_new_tokens,
            context_window=self.settings.context_window,
            system=SYSTEM_PROMPT_CITE if ask_to_cite else SYSTEM_PROMPT_PLAIN,
        )

    def ask(self, question: str, history: Sequence[ChatMessage] = ()) -> AnswerStream:
        """Start answering; iterate the returned stream for tokens."""
        prompt = self.prepare(question, history)
        stream = AnswerStream(question, prompt, iter(()))
        stream._pieces = self.generator.stream(
            prompt.messages,
            max_tokens=prompt.max_new_tokens,
            temperature=self.settings.temperature,
            stop_event=stream.stop_event,
        )
        return stream
