"""The prompt builder: rank order, trimming at sentence ends, history dropping, and never over budget."""

from __future__ import annotations

from typing import get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kb_assistant.errors import KBError
from kb_assistant.generators.base import ChatMessage
from kb_assistant.generators.echo import EchoGenerator
from kb_assistant.prompt import (
    CITING_STYLE,
    PROMPT_STYLES,
    SMALL_MODEL_STYLE,
    SYSTEM_PROMPT_CITE,
    SYSTEM_PROMPT_PLAIN,
    build_prompt,
    prompt_style,
)
from kb_assistant.settings import PromptStyleName
from kb_assistant.types import Source


def make_source(i: int, text: str, page: int | None = None) -> Source:
    return Source(id=i, text=text, source=f"/docs/doc{i}.txt", start=0, end=len(text), score=1 - i / 100, page=page)


CN = "北京是中华人民共和国的首都。它有三千年的建城史！上海是最大的城市？深圳在南方；"


def test_sources_are_numbered_in_rank_order() -> None:
    gen = EchoGenerator(context_window=4000)
    sources = [make_source(i, f"passage {i}. " * 5) for i in range(3)]
    built = build_prompt(gen, "q?", sources, max_new_tokens=100)
    user = built.messages[-1].content
    assert user.index("[1] doc0.txt") < user.index("[2] doc1.txt") < user.index("[3] doc2.txt")
    assert built.sources == tuple(sources)
    assert built.prompt_tokens == gen.count_prompt(built.messages)


def test_page_appears_in_label() -> None:
    built = build_prompt(EchoGenerator(context_window=4000), "q", [make_source(0, "x" * 30, page=4)],
                         max_new_tokens=10)
    assert "[1] doc0.txt, p. 4" in built.messages[-1].content


def test_last_source_trimmed_at_sentence_boundary() -> None:
    gen = EchoGenerator(context_window=0)
    base = gen.count_prompt(build_prompt(EchoGenerator(context_window=10**6), "问题", [],
                                         max_new_tokens=1).messages)
    long = CN * 10
    gen.context_window = base + 100 + 60  # room for part of one source after the answer reserve
    built = build_prompt(gen, "问题", [make_source(0, long), make_source(1, long)], max_new_tokens=100)
    assert len(built.sources) == 1
    trimmed = built.sources[0]
    assert 0 < len(trimmed.text) < len(long)
    assert trimmed.text[-1] in "。！？；"
    assert long.startswith(trimmed.text) and trimmed.end == len(trimmed.text)
    assert built.prompt_tokens <= gen.context_window - 100


def test_oldest_history_dropped_first() -> None:
    history = [ChatMessage("user", "old question " * 20), ChatMessage("assistant", "old answer " * 20),
               ChatMessage("user", "recent q"), ChatMessage("assistant", "recent a")]
    recent_only = build_prompt(EchoGenerator(context_window=10**6), "now?", [], history=history[2:],
                               max_new_tokens=1).prompt_tokens
    gen = EchoGenerator(context_window=recent_only + 100 + 10)
    built = build_prompt(gen, "now?", [], history=history, max_new_tokens=100)
    kept = [m.content for m in built.messages]
    assert "recent q" in kept and not any("old question" in c for c in kept)
    assert built.dropped_history == 2


def test_impossible_budgets_are_clear_errors() -> None:
    with pytest.raises(KBError, match="answer reserve"):
        build_prompt(EchoGenerator(context_window=100), "q", [], max_new_tokens=100)
    with pytest.raises(KBError, match="question alone"):
        build_prompt(EchoGenerator(context_window=600), "长" * 500, [], max_new_tokens=100)


def test_user_override_cannot_exceed_model_window() -> None:
    gen = EchoGenerator(context_window=1000)
    built = build_prompt(gen, "q", [make_source(0, "word. " * 500)], max_new_tokens=50, context_window=50_000)
    assert built.context_window == 1000 and built.prompt_tokens <= 950


text_st = st.text(alphabet=st.sampled_from(list("abc 中文。！？；.\n北京上海12")), max_size=600)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(text_st, max_size=8),
    question=st.text(max_size=80),
    history=st.lists(st.text(max_size=200), max_size=6),
    window=st.integers(min_value=200, max_value=3000),
    reserve=st.integers(min_value=1, max_value=400),
)
@pytest.mark.parametrize("style", list(PROMPT_STYLES))
def test_budget_property(style, texts, question, history, window, reserve) -> None:  # type: ignore[no-untyped-def]
    gen = EchoGenerator(context_window=window)
    hist = [ChatMessage("user" if i % 2 == 0 else "assistant", h) for i, h in enumerate(history)]
    sources = [make_source(i, t) for i, t in enumerate(texts)]
    try:
        built = build_prompt(gen, question, sources, history=hist, max_new_tokens=reserve, style=style)
    except KBError:
        return  # the question plus the answer reserve cannot fit: refused, not overflowed
    assert built.prompt_tokens == gen.count_prompt(built.messages)
    assert built.prompt_tokens + reserve <= window
    # packed sources keep rank order and are prefixes of the originals
    for packed, original in zip(built.sources, sources):
        assert packed.id == original.id and original.text.startswith(packed.text)


@pytest.fixture(scope="module")
def qwen_tokenizer(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from kb_assistant.bundled import bundled_model_path
    from kb_assistant.generators.llama import LlamaCppGenerator

    path = bundled_model_path(tmp_path_factory.mktemp("models"))
    return LlamaCppGenerator(path, n_ctx=32768, vocab_only=True)


@pytest.mark.slow
@pytest.mark.parametrize("style", list(PROMPT_STYLES))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(texts=st.lists(text_st, max_size=6), question=st.text(max_size=60),
       window=st.integers(min_value=300, max_value=2048), reserve=st.integers(min_value=16, max_value=256))
def test_budget_property_with_the_real_tokenizer(qwen_tokenizer, style, texts, question, window, reserve) -> None:  # type: ignore[no-untyped-def]
    """Counted by the bundled model's own tokenizer and chat template, the prompt still fits, in every style."""
    sources = [make_source(i, t) for i, t in enumerate(texts)]
    try:
        built = build_prompt(qwen_tokenizer, question, sources, max_new_tokens=reserve, context_window=window,
                             style=style)
    except KBError:
        return
    rendered = qwen_tokenizer.render(built.messages)
    assert rendered.startswith("<|im_start|>system") and rendered.endswith("<|im_start|>assistant\n")
    assert qwen_tokenizer.count_tokens(rendered) + reserve <= window


# -- prompt styles ----------------------------------------------------------------------------------


def test_auto_style_depends_on_whether_the_model_cites() -> None:
    assert prompt_style("auto", follows_citation_instructions=True).name == CITING_STYLE == "cite"
    small = prompt_style("auto", follows_citation_instructions=False)
    assert small.name == SMALL_MODEL_STYLE and not small.asks_to_cite
    assert prompt_style("question-first", follows_citation_instructions=True).name == "question-first"


def test_every_style_can_be_named_in_the_settings(isolated_data_dir) -> None:  # type: ignore[no-untyped-def]
    from kb_assistant.settings import load_settings

    assert set(get_args(PromptStyleName)) == {"auto", *PROMPT_STYLES}
    assert load_settings().prompt_style == "auto"
    assert load_settings(prompt_style="short").prompt_style == "short"


def test_a_bad_style_name_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from kb_assistant.errors import SettingsError
    from kb_assistant.settings import load_settings

    monkeypatch.setenv("KB_PROMPT_STYLE", "shortest")
    with pytest.raises(SettingsError, match="KB_PROMPT_STYLE"):
        load_settings()
    with pytest.raises(KBError, match="unknown prompt_style 'shortest'"):
        prompt_style("shortest")


@pytest.mark.parametrize("style", list(PROMPT_STYLES))
@pytest.mark.parametrize("question", ["为什么天空是蓝色的？", "Why is the sky blue?"])
def test_every_style_renders_chat_messages_a_chat_template_accepts(style: str, question: str) -> None:
    """One system message first, then user and assistant in turn, ending with the user's question and
    the sources (ChatGLM3/GLM-4 and Qwen templates expect this shape); a worked example is a prior turn."""
    history = [ChatMessage("user", "earlier?"), ChatMessage("assistant", "earlier answer")]
    sources = [make_source(0, "天空散射蓝光。Blue light scatters more."), make_source(1, "第二段。")]
    built = build_prompt(EchoGenerator(context_window=4000), question, sources, history=history,
                         max_new_tokens=100, style=style)
    roles = [m.role for m in built.messages]
    assert roles[0] == "system" and "system" not in roles[1:]
    assert roles[1:] == ["user", "assistant"] * ((len(roles) - 2) // 2) + ["user"]
    last = built.messages[-1].content
    assert question in last and "[1] doc0.txt" in last and "[2] doc1.txt" in last
    assert last.rindex(question) > last.index("[2] doc1.txt")  # asked again after the sources in every style
    assert ("earlier?" in [m.content for m in built.messages]) and built.prompt_tokens <= 3900


def test_styles_differ_as_named() -> None:
    gen, sources = EchoGenerator(context_window=4000), [make_source(0, "北京是首都。")]

    def user(style: str, q: str = "首都是哪里？") -> str:
        return build_prompt(gen, q, sources, max_new_tokens=10, style=style).messages[-1].content

    def system(style: str, q: str = "首都是哪里？") -> str:
        return build_prompt(gen, q, sources, max_new_tokens=10, style=style).messages[0].content

    assert system("cite") == SYSTEM_PROMPT_CITE and system("plain") == SYSTEM_PROMPT_PLAIN
    assert "资料" in system("plain-match") and system("plain-match", "Capital?") == SYSTEM_PROMPT_PLAIN
    assert user("question-first").index("首都是哪里") < user("question-first").index("[1] doc0.txt")
    assert user("plain").index("首都是哪里") > user("plain").index("[1] doc0.txt")
    assert "最简短" in user("short") and "shortest" in user("short", "Capital?")
    example = build_prompt(gen, "首都是哪里？", sources, max_new_tokens=10, style="example").messages
    assert [m.role for m in example] == ["system", "user", "assistant", "user"] and "1985" in example[2].content


def test_the_system_override_keeps_the_style_layout() -> None:
    built = build_prompt(EchoGenerator(context_window=4000), "q?", [], max_new_tokens=10, system="NO SOURCES",
                         style="question-first")
    assert built.messages[0].content == "NO SOURCES" and built.messages[-1].content.endswith("q?")
