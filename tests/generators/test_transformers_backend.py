"""The transformers backend on a tiny random GLM: template, counting, streaming, stopping, int8, windows."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from kb_assistant.errors import ModelUnavailableError
from kb_assistant.generators import make_generator
from kb_assistant.generators.base import ChatMessage
from kb_assistant.generators.transformers_backend import TransformersGenerator, chatglm_prompt
from kb_assistant.settings import ModelSettings

MESSAGES = [
    ChatMessage("system", "You answer from sources."),
    ChatMessage("user", "员工每年有多少天年假？ How many days? 😀"),
]


@pytest.fixture(scope="module")
def gen(tiny_glm: Path) -> TransformersGenerator:
    return TransformersGenerator(tiny_glm)


def greedy_reference(gen: TransformersGenerator, prompt: str, n: int) -> str:
    ids = torch.tensor([gen.encode(prompt)])
    with torch.no_grad():
        out = gen._model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n,
                                 do_sample=False, eos_token_id=gen._eos, pad_token_id=gen._eos[0])
    return str(gen.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True))


def test_render_uses_the_tokenizers_chat_template(gen: TransformersGenerator) -> None:
    prompt = gen.render(MESSAGES)
    assert prompt.startswith("[gMASK]<sop><|system|>\n") and prompt.endswith("<|assistant|>\n")
    expected = gen.tokenizer.apply_chat_template(
        [{"role": m.role, "content": m.content} for m in MESSAGES], add_generation_prompt=True, tokenize=True,
    )
    expected = expected["input_ids"] if isinstance(expected, dict) or hasattr(expected, "keys") else expected
    assert gen.encode(prompt) == list(expected)
    assert gen.count_prompt(MESSAGES) == len(expected)
    # special tokens are parsed, not spelled out byte by byte
    assert gen.count_tokens("<|user|>") == 1


@pytest.mark.parametrize("text", ["", "hello", "混合 Chinese and English。", "emoji 😀🎉", "\n\n  spaces  "])
def test_count_tokens_matches_the_tokenizer(gen: TransformersGenerator, text: str) -> None:
    assert gen.count_tokens(text) == len(gen.tokenizer(text, add_special_tokens=False)["input_ids"])


def test_stream_concatenates_to_the_greedy_output(gen: TransformersGenerator) -> None:
    prompt = gen.render(MESSAGES)
    pieces = list(gen.stream_prompt(prompt, max_tokens=24, temperature=0))
    assert len(pieces) >= 2
    assert "".join(pieces) == greedy_reference(gen, prompt, 24)
    assert gen.generate(MESSAGES, max_tokens=24, temperature=0) == "".join(pieces)


def test_sampling_runs(gen: TransformersGenerator) -> None:
    assert isinstance(gen.generate(MESSAGES, max_tokens=8, temperature=0.8), str)


def test_stop_event_stops_early(gen: TransformersGenerator) -> None:
    stop = threading.Event()
    pieces = []
    for piece in gen.stream_prompt(gen.render(MESSAGES), max_tokens=200, temperature=0, stop_event=stop):
        pieces.append(piece)
        stop.set()
    assert len(pieces) == 1


def test_closing_the_stream_ends_the_generation_thread(gen: TransformersGenerator) -> None:
    stream = gen.stream_prompt(gen.render(MESSAGES), max_tokens=200, temperature=0)
    next(stream)
    stream.close()
    assert not any(t.name == "kb-transformers-generate" and t.is_alive() for t in threading.enumerate())


def test_int8_on_cpu_loads_and_generates(tiny_glm: Path) -> None:
    q = TransformersGenerator(tiny_glm, quantize="int8", device="cpu")
    assert any("quantized.dynamic" in type(m).__module__ for m in q._model.modules())
    text = q.generate(MESSAGES, max_tokens=10, temperature=0)
    assert isinstance(text, str) and q.count_prompt(MESSAGES) > 0


def test_bf16_loads_and_generates(tiny_glm: Path) -> None:
    b = TransformersGenerator(tiny_glm, quantize="bf16", device="cpu")
    assert next(b._model.parameters()).dtype == torch.bfloat16
    assert isinstance(b.generate(MESSAGES, max_tokens=6, temperature=0), str)


def test_int4_on_cpu_uses_bitsandbytes_or_says_why_not(tiny_glm: Path) -> None:
    from kb_assistant.generators.quantize import bitsandbytes_available

    if not bitsandbytes_available():
        with pytest.raises(ModelUnavailableError, match="GGUF"):
            TransformersGenerator(tiny_glm, quantize="int4", device="cpu")
        return
    q = TransformersGenerator(tiny_glm, quantize="int4", device="cpu")
    assert any(type(m).__name__ == "Linear4bit" for m in q._model.modules())
    assert isinstance(q.generate(MESSAGES, max_tokens=6, temperature=0), str)


def test_context_window_from_config_and_override(tiny_glm: Path, gen: TransformersGenerator) -> None:
    assert gen.context_window == 512
    assert TransformersGenerator(tiny_glm, context_window=300).context_window == 300


def test_context_window_detection_order() -> None:
    from kb_assistant.generators.transformers_backend import config_window
    from kb_assistant.profiles import profile_window

    assert config_window(type("C", (), {"seq_length": 8192, "max_position_embeddings": 4096})()) == 8192
    assert config_window(type("C", (), {"max_sequence_length": 2048})()) == 2048
    assert config_window(type("C", (), {})()) is None
    assert profile_window("chatglm2-6b-int4") == 32768 and profile_window("chatglm-6b") == 2048
    assert profile_window("chatglm3-6b") == 8192 and profile_window("glm-4-9b-chat") == 131072


def test_registry_builds_it_and_missing_path_is_clear(tiny_glm: Path, tmp_path: Path) -> None:
    model = ModelSettings(generator="transformers", model_path=tiny_glm, quantize="none")
    gen = make_generator(model, models_dir=tmp_path)
    assert isinstance(gen, TransformersGenerator) and gen.name == "tiny-glm"
    assert make_generator(ModelSettings(generator="transformers", model_path=tiny_glm), models_dir=tmp_path) is gen
    with pytest.raises(ModelUnavailableError, match="model_path"):
        make_generator(ModelSettings(generator="transformers"), models_dir=tmp_path)
    with pytest.raises(ModelUnavailableError, match="config.json"):
        TransformersGenerator(tmp_path)


def test_chatglm_fallback_prompt_formats() -> None:
    msgs = [ChatMessage("system", "S"), ChatMessage("user", "q1"), ChatMessage("assistant", "a1"),
            ChatMessage("user", "q2")]
    assert chatglm_prompt(msgs) == "[Round 1]\n\n问：S\n\nq1\n\n答：a1\n\n[Round 2]\n\n问：q2\n\n答："
    assert chatglm_prompt(msgs[1:], first_round=0, blank_lines=False) == \
        "[Round 0]\n问：q1\n答：a1\n[Round 1]\n问：q2\n答："
