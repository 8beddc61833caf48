"""The OpenAI-compatible backend against a real server: llama-cpp-python's, serving the bundled GGUF."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from kb_assistant.errors import ModelUnavailableError
from kb_assistant.generators import make_generator
from kb_assistant.generators.base import ChatMessage
from kb_assistant.generators.openai_compat import OpenAICompatGenerator, approximate_tokens
from kb_assistant.settings import ModelSettings

from .conftest import free_port

MESSAGES = [ChatMessage("system", "You are a helpful assistant."),
            ChatMessage("user", "北京是哪个国家的首都？Answer in one short sentence.")]


def test_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(ModelUnavailableError, match="cannot reach"):
        OpenAICompatGenerator(f"http://127.0.0.1:{free_port()}/v1")


def test_approximate_count() -> None:
    assert approximate_tokens("") == 0
    assert approximate_tokens("中文") == 3  # 2 CJK characters, +10%, rounded up
    assert approximate_tokens("abcdef") == 3  # 6 characters / 3, +10%


@pytest.mark.slow
def test_streams_chat_and_raw_completions_from_a_real_server(server: str, bundled_models_dir: Path) -> None:
    gen = make_generator(ModelSettings(generator="openai", base_url=server, context_window=2048),
                         models_dir=bundled_models_dir)
    assert isinstance(gen, OpenAICompatGenerator)
    assert gen.model == "bundled-qwen" and gen.context_window == 2048
    assert gen.token_counting.startswith("approximate")
    pieces = list(gen.stream(MESSAGES, max_tokens=24, temperature=0))
    assert len(pieces) >= 2 and "".join(pieces).strip()
    raw = "".join(gen.stream_prompt(gen.render(MESSAGES), max_tokens=16, temperature=0))
    assert raw.strip()
    # the estimate stays above the real count (the bundled model's own tokenizer and template)
    from kb_assistant.bundled import bundled_model_path
    from kb_assistant.generators.llama import LlamaCppGenerator

    exact = LlamaCppGenerator(bundled_model_path(bundled_models_dir), n_ctx=2048, vocab_only=True)
    long = [ChatMessage("user", "员工每年有十五天带薪年假。Employees get fifteen days of leave. " * 20)]
    assert gen.count_prompt(long) >= exact.count_prompt(long)
    gen.close()


@pytest.mark.slow
def test_stop_event_ends_the_stream(server: str) -> None:
    gen = OpenAICompatGenerator(server, model="bundled-qwen", context_window=1024)
    stop = threading.Event()
    pieces = []
    for piece in gen.stream(MESSAGES, max_tokens=200, temperature=0, stop_event=stop):
        pieces.append(piece)
        stop.set()
    assert len(pieces) == 1
    gen.close()


@pytest.mark.slow
def test_exact_counting_with_a_local_tokenizer(server: str, tiny_glm: Path) -> None:
    gen = OpenAICompatGenerator(server, tokenizer_path=tiny_glm)
    assert gen.token_counting.startswith("exact")
    assert gen.render(MESSAGES).startswith("[gMASK]<sop><|system|>")
    assert gen.count_tokens("<|user|>") == 1
    gen.close()
