"""Question in, streamed answer with numbered, checked citations out."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from .answerability import Answerability, assess
from .attribution import attribute, best_span, insert_markers, sentences
from .citations import cited_numbers, resolve_citations
from .embedders import Embedder
from .errors import EmptyKnowledgeBaseError, KBError
from .evidence import score_sentences, select_evidence
from .generators.base import ChatMessage, Generator
from .kb import KnowledgeBase, Retriever
from .multipart import parts_hint, retrieve_parts, split_question
from .nonanswer import Fallback, quote
from .prompt import BuiltPrompt, build_prompt, prompt_style
from .script import script_follower
from .settings import Settings
from .support import attach_support
from .textmatch import MemoEmbedder, has_cjk
from .turns import TurnPlan, plan_turn
from .types import Answer, Citation, Source

NOT_FOUND_ZH = "知识库中没有找到与这个问题相关的内容。"
NOT_FOUND_EN = "The knowledge base does not contain anything relevant to this question."
NOT_ANSWERED_ZH = "找到的资料与问题相关，但没有给出这个问题的答案。下面列出最接近的段落。"
NOT_ANSWERED_EN = ("The documents found are related, but they do not answer this question; the closest "
                   "passages are listed below.")
REFUSALS = (NOT_FOUND_ZH, NOT_FOUND_EN, NOT_ANSWERED_ZH, NOT_ANSWERED_EN)
MAX_QUERY_CHARS = 1000  # a longer question is searched by its beginning (the embedder reads 512 tokens)
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
                  embedder: Embedder | None = None, sources: Sequence[Source] | None = None) -> Answer:
    """Resolve the model's markers (dropping those that point at nothing); if it cited nothing,
    attribute each sentence to its best-supporting source. Each citation gets its support score and
    the span of the sentence in the source that supports it best.

    Given an ``embedder``, every sentence is checked instead (support.attach_support): supported ones
    are cited, unsupported ones left unmarked, and ``Answer.claims`` says which is which.

    ``sources``: the sources as shown to the user, numbered as in the prompt (whole, where the model
    read only their best sentences); default the prompt's own."""
    shown = tuple(sources) if sources is not None else prompt.sources
    if embedder is not None and shown and found:
        text, cited, checked = attach_support(raw, question, shown, embedder)
        return Answer(question, text, shown, cited, prompt.prompt_tokens, found=found, claims=checked)
    text, citations = resolve_citations(raw, shown)
    if citations:
        claims: dict[int, str] = {}
        for start, end in sentences(text):
            sentence = text[start:end]
            for n in cited_numbers(sentence):
                claims.setdefault(n, re.sub(r"[\[【][^\]】]*[\]】]", "", sentence))
        citations = tuple(_with_spans(c, claims.get(c.number, text)) for c in citations)
    elif shown and found:
        spans = attribute(text, question, shown)
        text = insert_markers(text, spans)
        best: dict[int, tuple[float, str]] = {}
        for a in spans:
            if a.number and a.support > best.get(a.number, (0.0, ""))[0]:
                best[a.number] = (a.support, text[a.start:a.end])
        citations = tuple(
            _with_spans(Citation(n, shown[n - 1], inferred=True, support=round(s, 3)), claim)
            for n, (s, claim) in best.items()
        )
    return Answer(question, text, shown, citations, prompt.prompt_tokens, found=found)


class AnswerStream:
    """Iterate for text pieces as the model writes; ``answer`` is set once iteration ends."""

    def __init__(self, question: str, prompt: BuiltPrompt, pieces: Iterator[str], *, found: bool = True,
                 prefix: str = "", stop_event: threading.Event | None = None,
                 sources: Sequence[Source] | None = None, embedder: Embedder | None = None,
                 fallback: Fallback | None = None) -> None:
        self.question = question
        self.fallback = fallback  # quoted after a reply that does not answer (nonanswer.py)
        self.prompt = prompt
        self.found = found
        self.sources = sources
        self.embedder = embedder
        self._pieces = pieces
        self._prefix = prefix
        self.stop_event = stop_event or threading.Event()  # set it to stop the model early
        self.answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        # asked in Traditional script, answered in it (script.py); the quoted fallback is verbatim
        shown = self.sources if self.sources is not None else self.prompt.sources
        follow = script_follower(self.question, [s.text for s in shown])
        text: list[str] = []
        for piece in self._model_pieces():
            piece = follow(piece) if follow else piece
            text.append(piece)
            yield piece
        answer = self._finish("".join(text))
        if self.fallback and not self.stop_event.is_set() and self.fallback.needed(self.question, answer):
            text.append(self.fallback.text)
            yield self.fallback.text
            answer = self._finish("".join(text))
        self.answer = answer

    def _finish(self, raw: str) -> Answer:
        return finish_answer(self.question, raw, self.prompt, found=self.found, embedder=self.embedder,
                             sources=self.sources)

    def _model_pieces(self) -> Iterator[str]:
        if self._prefix:
            yield self._prefix
        yield from self._pieces

    def result(self) -> Answer:
        """Drain the stream (if not yet) and return the finished answer."""
        if self.answer is None:
            for _ in self:
                pass
        assert self.answer is not None
        return self.answer


@dataclass(frozen=True)
class Plan:
    """One turn prepared: the prompt, the sources as shown (whole, numbered as in the prompt), whether
    the evidence answers the question, the turn's search, and the embedder that shares their work."""

    prompt: BuiltPrompt
    shown: tuple[Source, ...]
    verdict: Answerability | None
    turn: TurnPlan
    embedder: Embedder


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
        return self.plan(question, history).prompt

    def plan(self, question: str, history: Sequence[ChatMessage] = ()) -> Plan:
        """Search (alone or as a follow-up), judge whether the evidence answers, pick what the model
        reads (focused sentences for small models) and pack it into the window."""
        if not question.strip():
            raise KBError("the question is empty: type a question")
        if self.kb.count() == 0:
            raise EmptyKnowledgeBaseError(
                f"knowledge base {self.kb.name!r} is empty: add documents with "
                f"`kb index PATH --kb {self.kb.name}` first"
            )
        cfg = self.settings
        parts = split_question(question[:MAX_QUERY_CHARS])

        def search(query: str, k: int) -> list[Source]:  # a question asking for several things: per part
            return retrieve_parts(self.retriever.search, query, k).sources

        turn = plan_turn(search, question[:MAX_QUERY_CHARS], history, cfg.top_k, refusals=REFUSALS)
        sources = turn.sources
        memo = MemoEmbedder(self.kb.embedder)
        mode = cfg.cite_mode
        ask_to_cite = mode == "ask" or (mode == "auto" and self.generator.follows_citation_instructions)
        focused = cfg.evidence == "sentences" or (
            cfg.evidence == "auto" and not self.generator.follows_citation_instructions)
        # the question's sentence scores, shared by the answerability check and evidence selection
        shared = sources and (focused or (cfg.check_answerable and question in parts))
        scored = score_sentences(question, sources, memo) if shared else None
        verdict = None
        if sources and cfg.check_answerable:  # several parts: refused only when no part is answered
            verdicts = [assess(part, sources, memo, scored=scored if part == question else None) for part in parts]
            verdict = max(verdicts, key=lambda v: (v.answerable, v.score))
        whole = {s.id: s for s in sources}
        if sources and focused:
            sources = [e.as_source() for e in select_evidence(
                question, sources, memo, count_tokens=self.generator.count_tokens,
                budget=cfg.evidence_budget * len(parts), scored=scored)]
        window = cfg.model.context_window or self.generator.context_window
        style = prompt_style(cfg.prompt_style, follows_citation_instructions=ask_to_cite)
        hint = parts_hint(question, parts) if not turn.follow_up else ""
        prompt = build_prompt(
            self.generator,
            f"{question}\n{hint}" if hint else question,
            sources,
            history=turn.history,
            max_new_tokens=cfg.max_new_tokens,
            context_window=cfg.model.context_window,
            system=None if sources else SYSTEM_PROMPT_NO_SOURCES,
            style=style,
            widen=self.retriever.widen if window >= LONG_CONTEXT and not focused else None,
        )
        shown = tuple(whole.get(s.id, s) if focused else s for s in prompt.sources)
        return Plan(prompt, shown, verdict, turn, memo)

    def ask(self, question: str, history: Sequence[ChatMessage] = (), *,
            on_wait: Callable[[], None] | None = None) -> AnswerStream:
        """Start answering; iterate the returned stream for tokens.

        When no source passes the relevance threshold, or the sources found do not answer the question
        (``check_answerable``), the model is not called: the answer says so, and in the second case lists
        the closest passages as its (related, not answering) sources. With ``answer_without_sources`` the
        model answers anyway, under a clear note. ``on_wait`` is called if the model is busy with another
        answer and this one must wait its turn (see ``Generator.stream``)."""
        plan = self.plan(question, history)
        prompt = plan.prompt
        zh = is_chinese(question)
        if not prompt.sources and not self.settings.answer_without_sources:
            return AnswerStream(question, prompt, iter([NOT_FOUND_ZH if zh else NOT_FOUND_EN]), found=False)
        if plan.verdict is not None and not plan.verdict.answerable and not self.settings.answer_without_sources:
            return AnswerStream(question, prompt, iter([NOT_ANSWERED_ZH if zh else NOT_ANSWERED_EN]), found=False,
                                sources=plan.shown)
        stop = threading.Event()
        pieces = self.generator.stream(
            prompt.messages,
            max_tokens=prompt.max_new_tokens,
            temperature=self.settings.temperature,
            stop_event=stop,
            on_wait=on_wait,
        )
        note = "" if prompt.sources else (NO_SOURCES_NOTE_ZH if zh else NO_SOURCES_NOTE_EN)
        return AnswerStream(question, prompt, pieces, found=bool(prompt.sources), prefix=note, stop_event=stop,
                            sources=plan.shown, embedder=plan.embedder if self.settings.check_support else None,
                            fallback=self._fallback(question, plan))

    @staticmethod
    def _fallback(question: str, plan: Plan) -> Fallback | None:
        """The best-matching source sentence, quoted, for a reply that does not answer (nonanswer.py)."""
        if plan.verdict is None:
            return None
        text = None
        passages = []
        for number, start, end in plan.verdict.passages:
            source = plan.turn.sources[number - 1]
            text = text or quote(question, plan.shown, source, start, end)
            if has_cjk(question) == has_cjk(source.text[start:end]):
                passages.append((source.source, source.start + start, source.start + end))
        return Fallback(text, tuple(passages)) if text else None
