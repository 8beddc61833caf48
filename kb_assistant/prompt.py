"""Prompt assembly within the model's context window, counted with the model's own tokenizer."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from .errors import KBError
from .generators.base import ChatMessage, Generator
from .types import Source

# For models that follow citation instructions (ChatGLM3, GLM-4, Qwen 7B+ ...).
SYSTEM_PROMPT_CITE = (
    "You are a careful knowledge-base assistant. Answer the question using only the numbered sources "
    "the user gives. After every sentence that uses a source, cite it by its number in square brackets, "
    "e.g. [1] or [2][3]. If the sources do not contain the answer, say that the knowledge base does not "
    "contain it. Answer in the language of the question, briefly.\n"
    "你是严谨的知识库助手：只根据给出的编号资料回答，每句话后用方括号标注所依据资料的编号，如[1]；"
    "资料中没有答案时，直接说明知识库中没有相关内容。用提问的语言简洁回答。"
)
# For small models: asked to cite, the bundled 0.5B model answers with bare markers ("[1] [2]")
# instead of the answer, so it is asked only to answer and sentences are attributed afterwards.
SYSTEM_PROMPT_PLAIN = (
    "You are a helpful assistant. Answer questions using only the given documents, briefly, in the "
    "language of the question. If the documents do not contain the answer, say so."
)
SYSTEM_PROMPT = SYSTEM_PROMPT_CITE


@dataclass(frozen=True)
class Wording:
    """The words of a prompt in one language: system text, the two labels of the user message, an
    instruction after the question, and an optional worked example (source, question, answer)."""

    system: str
    sources_label: str = "Sources / 资料:"
    question_label: str = "Question / 问题:"
    instruction: str = ""
    example: tuple[str, str, str] | None = None


@dataclass(frozen=True)
class PromptStyle:
    """A named way of asking: ``zh`` (when given) is used for questions containing Chinese, ``en``
    otherwise; ``question_first`` puts the question before the sources as well as after them."""

    name: str
    en: Wording
    zh: Wording | None = None
    question_first: bool = False
    asks_to_cite: bool = False

    def wording(self, question: str) -> Wording:
        return self.zh if self.zh is not None and _CJK.search(question) else self.en


_CJK = re.compile(r"[\u3400-\u9fff]")
_EN_SHORT = ("Answer with the shortest exact phrase from the documents (a name, number, date or term), "
             "then stop.")
_ZH_SHORT = "请直接给出资料中最简短、准确的答案（人名、数字、日期或术语），不要解释。"
_EN_EXAMPLE = ("[1] bridge.txt\nThe Harbour Bridge opened in 1932. It is 1,149 metres long and carries eight lanes.",
               "How long is the Harbour Bridge?", "1,149 metres.")
_ZH_EXAMPLE = ("[1] 龙井.txt\n西湖龙井产于浙江省杭州市西湖一带，1985年获国家金质奖，以色绿、香郁、味甘、形美著称。",
               "西湖龙井在哪一年获得国家金质奖？", "1985年。")
_PLAIN_ZH = "你是知识库助手。只根据给出的资料，用提问的语言简洁回答问题；资料中没有答案时，直接说明。"
_BOTH = SYSTEM_PROMPT_PLAIN + "\n" + _PLAIN_ZH
_EN = Wording(SYSTEM_PROMPT_PLAIN, "Documents:", "Question:")
_ZH = Wording(_PLAIN_ZH, "资料：", "问题：")

# name -> style. "plain" is the December default for small models, "cite" for models that follow
# citation instructions; the others are the variants bench/bench_prompts.py compares.
PROMPT_STYLES: dict[str, PromptStyle] = {s.name: s for s in (
    PromptStyle("cite", Wording(SYSTEM_PROMPT_CITE), asks_to_cite=True),
    PromptStyle("plain", Wording(SYSTEM_PROMPT_PLAIN)),
    PromptStyle("plain-zh", _ZH),
    PromptStyle("plain-both", Wording(_BOTH)),
    PromptStyle("plain-match", _EN, _ZH),
    PromptStyle("short", replace(_EN, instruction=_EN_SHORT), replace(_ZH, instruction=_ZH_SHORT)),
    PromptStyle("answer-first", replace(_EN, instruction="Give the answer first, in a few words; then at most "
                                        "one sentence of explanation."),
                replace(_ZH, instruction="先用几个字直接给出答案，然后最多用一句话说明。")),
    PromptStyle("example", replace(_EN, example=_EN_EXAMPLE), replace(_ZH, example=_ZH_EXAMPLE)),
    PromptStyle("question-first", _EN, _ZH, question_first=True),
)}
# What "auto" gives a model that does not follow citation instructions. bench/bench_prompts.py (bundled
# 0.5B, 2,048-token window, 24-44 CMRC/DRCD/English questions): no variant beat "plain" on answer contains
# gold by more than noise (question-first +3/-2 questions, both languages +1/-0); the worked example
# (+1/-6), shortest-exact (+1/-2) and answer-first (+0/-1) lost; the same held with focused evidence.
SMALL_MODEL_STYLE = "plain"
CITING_STYLE = "cite"


def prompt_style(name: str, *, follows_citation_instructions: bool = False) -> PromptStyle:
    """The style called ``name``; "auto" is the citing style for models that follow citation
    instructions and the measured best plain style for small ones."""
    if name == "auto":
        name = CITING_STYLE if follows_citation_instructions else SMALL_MODEL_STYLE
    try:
        return PROMPT_STYLES[name]
    except KeyError:
        raise KBError(f"unknown prompt_style {name!r}: choose auto or one of {', '.join(PROMPT_STYLES)}") from None


# A source cut short ends after one of these (Chinese and Western sentence ends, or a line break).
_SENTENCE_END = re.compile(r"[。！？；!?;…](?:[」』”’）)]*)|\.(?=\s)|\n")
MIN_TRIMMED_CHARS = 20


@dataclass(frozen=True)
class BuiltPrompt:
    """The messages sent to the model and what went into them."""

    messages: tuple[ChatMessage, ...]
    sources: tuple[Source, ...]
    prompt_tokens: int
    max_new_tokens: int
    context_window: int
    dropped_history: int = 0


def format_source(number: int, source: Source) -> str:
    """``[n] file, p. 3 · heading path`` then the text: the path says whose handbook, which chapter."""
    return f"[{number}] {source.where}\n{source.text.strip()}"


def _user_message(question: str, sources: Sequence[Source], words: Wording, question_first: bool) -> str:
    asked = f"{words.question_label} {question}"
    if words.instruction:
        asked += f"\n{words.instruction}"
    if not sources:
        return asked
    blocks = "\n\n".join(format_source(i, s) for i, s in enumerate(sources, 1))
    lead = f"{words.question_label} {question}\n\n" if question_first else ""
    return f"{lead}{words.sources_label}\n\n{blocks}\n\n{asked}"


def _messages(style: PromptStyle, system: str | None, history: Sequence[ChatMessage], question: str,
              sources: Sequence[Source]) -> list[ChatMessage]:
    words = style.wording(question)
    shown: list[ChatMessage] = []
    if words.example is not None:
        text, asked, answer = words.example
        example = f"{words.sources_label}\n\n{text}\n\n{words.question_label} {asked}"
        if words.instruction:
            example += f"\n{words.instruction}"
        shown = [ChatMessage("user", example), ChatMessage("assistant", answer)]
    user = _user_message(question, sources, words, style.question_first)
    return [ChatMessage("system", system or words.system), *shown, *history, ChatMessage("user", user)]


def _sentence_cuts(text: str) -> list[int]:
    return [m.end() for m in _SENTENCE_END.finditer(text) if m.end() < len(text)]


def build_prompt(
    generator: Generator,
    question: str,
    sources: Sequence[Source],
    *,
    history: Sequence[ChatMessage] = (),
    max_new_tokens: int = 512,
    context_window: int | None = None,
    system: str | None = None,
    style: PromptStyle | str = CITING_STYLE,
    widen: Callable[[Source], Source | None] | None = None,
) -> BuiltPrompt:
    """Pack sources in rank order into the room the window leaves after the answer reserve.

    Oldest history turns go first when room is short; the last source that does not fit whole is
    cut at a sentence boundary; when every source fits and ``widen`` is given, each source in rank
    order is replaced by its widened form (neighbouring chunks) while that still fits. The rendered
    prompt is never longer than ``context_window - max_new_tokens`` tokens by the generator's count.
    ``style`` (a ``PromptStyle`` or its name) words the messages; ``system``, when given, replaces its
    system text (the assistant's own "no sources" prompt).
    """
    if isinstance(style, str):
        style = prompt_style(style)
    window = min(context_window or generator.context_window, generator.context_window)
    budget = window - max_new_tokens
    if budget <= 0:
        raise KBError(
            f"the answer reserve ({max_new_tokens} tokens) fills the whole {window}-token window: "
            "lower max_new_tokens or raise the context window"
        )

    def count(hist: Sequence[ChatMessage], srcs: Sequence[Source]) -> int:
        return generator.count_prompt(_messages(style, system, hist, question, srcs))

    history = list(history)
    dropped = 0
    while count(history, []) > budget and history:
        # Drop whole turns (user + assistant) from the oldest end.
        cut = 2 if len(history) >= 2 and history[0].role == "user" else 1
        history, dropped = history[cut:], dropped + cut
    if count(history, []) > budget:
        raise KBError(
            f"the question alone is longer than the {budget} tokens left for the prompt: shorten it "
            "or raise the context window"
        )

    packed = _pack(generator, sources, budget, lambda srcs: count(history, srcs))
    if widen is not None and len(packed) == len(sources) and all(p is s for p, s in zip(packed, sources)):
        for i, source in enumerate(packed):
            wider = widen(source)
            if wider is not None and count(history, [*packed[:i], wider, *packed[i + 1:]]) <= budget:
                packed[i] = wider

    messages = tuple(_messages(style, system, history, question, packed))
    tokens = generator.count_prompt(messages)
    assert tokens <= budget, "prompt builder exceeded its budget"  # guarded above; a bug if hit
    return BuiltPrompt(messages, tuple(packed), tokens, max_new_tokens, window, dropped)


ESTIMATE_SLACK = 16  # tokens kept free while sources are counted one block at a time


def _pack(generator: Generator, sources: Sequence[Source], budget: int,
          count: Callable[[list[Source]], int]) -> list[Source]:
    """Sources in rank order while they fit, the first that does not cut at a sentence end.

    Rendering and tokenising the whole prompt for every candidate is slow with long windows, so each
    source's block is counted alone and added to a running estimate; the exact count is taken only
    near the budget, and the result is checked exactly (and shortened if ever needed) at the end.
    """
    packed: list[Source] = []
    estimate = count([])
    for source in sources:
        block = generator.count_tokens(format_source(len(packed) + 1, source)) + (ESTIMATE_SLACK if not packed else 4)
        if estimate + block + ESTIMATE_SLACK <= budget:
            packed.append(source)
            estimate += block
            continue
        exact = count([*packed, source])
        if exact <= budget:
            packed.append(source)
            estimate = exact
            continue
        # Cut the source to the room left, counting its block alone (whole-prompt counts are slow).
        room = budget - count(packed) - (ESTIMATE_SLACK if not packed else 4)
        number = len(packed) + 1
        trimmed = _trim_to_fit(
            source, lambda s, n=number, r=room: generator.count_tokens(format_source(n, s)) <= r
        )
        if trimmed is not None:
            packed.append(trimmed)
        break
    while packed and count(packed) > budget:  # the estimate ran over: shorten the last source
        last = packed.pop()
        trimmed = _trim_to_fit(last, lambda s: count([*packed, s]) <= budget)
        if trimmed is not None:
            packed.append(trimmed)
            break
    return packed


def _trim_to_fit(source: Source, fits) -> Source | None:  # type: ignore[no-untyped-def]
    """The longest sentence-aligned prefix of ``source`` that ``fits``, or None."""
    cuts = [c for c in _sentence_cuts(source.text) if c >= MIN_TRIMMED_CHARS]
    lo, hi, best = 0, len(cuts) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        candidate = _prefix(source, cuts[mid])
        if fits(candidate):
            best, lo = candidate, mid + 1
        else:
            hi = mid - 1
    return best


def _prefix(source: Source, n: int) -> Source:
    text = source.text[:n].rstrip()
    return replace(source, text=text, end=source.start + len(text))
