"""Question in, streamed answer with numbered, checked citations out."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence

from .attribution import attribute, best_span, insert_markers, sentences
from .citations import cited_numbers, resolve_citations
from .embedders import Embedder
from .errors import EmptyKnowledgeBaseError
from .generators.base import ChatMessage, Generator
from .kb import KnowledgeBase, Retriever, retrieval_query
from .prompt import SYSTEM_PROMPT_CITE, SYSTEM_PROMPT_PLAIN, BuiltPrompt, build_prompt
from .settings import Settings
from .support import attach_support
from .types import Answer, Citation

NOT_FOUND_ZH = "知识库中没有找到与这个问题相关的内容。"
NOT_FOUND_EN = "The knowledge base does not contain anything relevant to this question."
NO_SOURCES_NOTE_ZH = "（知识库中没有相关内容，以下回答来自模型自身知识，未经资料核实。）\n"
NO_SOURCES_NOTE_EN = "(Nothing relevant in the knowledge base; this answer comes from the model itself, unchecked.)\n"
SYSTEM_PROMPT_NO_SOURCES = (
    "You are a helpful assistant. The user's knowledge base has nothing on this question; answer from "
    "general knowledge, briefly, in the language of the question, and say when you are unsure."
)
LONG_CONTEXT = 16384  # windows this large get neighbouring chunks around each source


def is_chinese(text: str) -> bool:
    return bool(re.search(r"[\u3400-\u9fff]", text))


def _with_spans(citation: Citation, claim: str) -> Citation:
    start, end, score = best_span(claim, citation.source)
    support = citation.support if citation.support is not None else round(score, 3)
    return Citation(citation.number, citation.source, citation.inferred, support, start, end)


def finish_answer(question: str, raw: str, prompt: BuiltPrompt, *, found: bool = True,
                  embedder: Embedder | None = None) -> Answer:
    """Resolve the model's markers (dropping those that point at nothing); if it cited nothing,
    attribute each sentence to its best-supporting source. Each citation gets its support score and
    the span of the sentence in the source that supports it best.

    Given an ``embedder``, every sentence is checked instead (support.attach_support): supported ones
    are cited, unsupported ones left unmarked, and ``Answer.claims`` says which is which."""
    if embedder is not None and prompt.sources and found:
        text, cited, checked = attach_support(raw, question, prompt.sources, embedder)
        return Answer(question, text, prompt.sources, cited, prompt.prompt_tokens, found=found, claims=checked)
    text, citations = resolve_citations(raw, prompt.sources)
    if citations:
        claims: dict[int, str] = {}
        for start, end in sentences(text):
            sentence = text[start:end]
            for n in cited_numbers(sentence):
                claims.setdefault(n, re.sub(r"[\[【][^\]】]*[\]】]", "", sentence))
        citations = tuple(_with_spans(c, claims.get(c.number, text)) for c in citations)
    elif prompt.sources and found:
        spans = attribute(text, question, prompt.sources)
        text = insert_markers(text, spans)
        best: dict[int, tuple[float, str]] = {}
        for a in spans:
            if a.number and a.support > best.get(a.number, (0.0, ""))[0]:
                best[a.number] = (a.support, text[a.start:a.end])
        citations = tuple(
            _with_spans(Citation(n, prompt.sources[n - 1], inferred=True, support=round(s, 3)), claim)
            for n, (s, claim) in best.items()
        )
    return Answer(question, text, prompt.sources, citations, prompt.prompt_tokens, found=found)


class AnswerStream:
    """Iterate for text pieces as the model writes; ``answer`` is set once iteration ends."""

    def __init__(self, question: str, prompt: BuiltPrompt, pieces: Iterator[str], *, found: bool = True,
                 prefix: str = "", stop_event: threading.Event | None = None) -> None:
        self.question = question
        self.prompt = prompt
        self.found = found
        self._pieces = pieces
        self._prefix = prefix
        self.stop_event = stop_event or threading.Event()  # set it to stop the model early
        self.answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        text = [self._prefix] if self._prefix else []
        if self._prefix:
            yield self._prefix
        for piece in self._pieces:
            text.append(piece)
            yield piece
        self.answer = finish_answer(self.question, "".join(text), self.prompt, found=self.found)

    def result(self) -> Answer:
        """Drain the stream (if not yet) and return the finished answer."""
        if self.answer is None:
            for _ in self:
                pass
        assert self.answer is not None
        return self.answer


class Assistant:
    """Ties a knowledge base and its retriever to a generator under one settings object."""

    def __init__(self, kb: KnowledgeBase, generator: Generator, settings: Settings,
                 retriever: Retriever | None = None) -> None:
        self.kb = kb
        self.generator = generator
        self.settings = settings
        self.retriever = retriever or kb.retriever(settings)

    def prepare(self, question: str, history: Sequence[ChatMessage] = ()) -> BuiltPrompt:
        """Retrieve and pack the prompt, without calling the model."""
        if self.kb.count() == 0:
            raise EmptyKnowledgeBaseError(
                f"knowledge base {self.kb.name!r} is empty: add documents with "
                f"`kb index PATH --kb {self.kb.name}` first"
            )
        sources = self.retriever.search(retrieval_query(question, history), self.settings.top_k)
        mode = self.settings.cite_mode
        ask_to_cite = mode == "ask" or (mode == "auto" and self.generator.follows_citation_instructions)
        system = SYSTEM_PROMPT_CITE if ask_to_cite else SYSTEM_PROMPT_PLAIN
        window = self.settings.model.context_window or self.generator.context_window
        return build_prompt(
            self.generator,
            question,
            sources,
            history=history,
            max_new_tokens=self.settings.max_new_tokens,
            context_window=self.settings.model.context_window,
            system=system if sources else SYSTEM_PROMPT_NO_SOURCES,
            widen=self.retriever.widen if window >= LONG_CONTEXT else None,
        )

    def ask(self, question: str, history: Sequence[ChatMessage] = (), *,
            on_wait: Callable[[], None] | None = None) -> AnswerStream:
        """Start answering; iterate the returned stream for tokens.

        When no source passes the relevance threshold the model is not called: the answer says the
        knowledge base does not contain it (unless ``answer_without_sources`` is on, in which case
        the model answers under a clear note). ``on_wait`` is called if the model is busy with another
        answer and this one must wait its turn (see ``Generator.stream``)."""
        prompt = self.prepare(question, history)
        zh = is_chinese(question)
        if not prompt.sources and not self.settings.answer_without_sources:
            return AnswerStream(question, prompt, iter([NOT_FOUND_ZH if zh else NOT_FOUND_EN]), found=False)
        stop = threading.Event()
        pieces = self.generator.stream(
            prompt.messages,
            max_tokens=prompt.max_new_tokens,
            temperature=self.settings.temperature,
            stop_event=stop,
            on_wait=on_wait,
        )
        note = "" if prompt.sources else (NO_SOURCES_NOTE_ZH if zh else NO_SOURCES_NOTE_EN)
        return AnswerStream(question, prompt, pieces, found=bool(prompt.sources), prefix=note, stop_event=stop)
