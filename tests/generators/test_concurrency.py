"""One generation at a time per loaded model: concurrent streams all get whole answers, and a stream that
is stopped, closed, abandoned or fails releases the model at once."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kb_assistant.generators.base import ChatMessage, Generator
from kb_assistant.generators.echo import EchoGenerator

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = [ChatMessage("user", "[1] a.txt\nThe server restarts every night at two o'clock. Backups rotate weekly."
                                "\n\nWhen does the server restart?")]


def run_concurrently(backend: str, path: Path) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GGML_NO_BACKTRACE": "1"}  # a crash ends at once, no gdb
    out = subprocess.run([sys.executable, "-m", "tests.generators.concurrent_streams", backend, str(path)],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    assert out.returncode == 0, f"the process died ({out.returncode}): {out.stderr[-2000:]}"
    return dict(json.loads(out.stdout.splitlines()[-1]))


@pytest.mark.slow
def test_concurrent_streams_on_the_bundled_gguf(bundled_gguf: Path) -> None:
    result = run_concurrently("llama-cpp", bundled_gguf)
    assert result["errors"] == []
    assert all(str(a).strip() for a in result["alone"])  # type: ignore[attr-defined]
    assert result["together"] == result["alone"]
    assert result["waited"] >= 2  # three started at once: two had to wait their turn


def test_concurrent_streams_on_the_transformers_backend(tiny_glm: Path) -> None:
    result = run_concurrently("transformers", tiny_glm)
    assert result["errors"] == []
    assert all(str(a) for a in result["alone"])  # type: ignore[attr-defined]
    assert result["together"] == result["alone"]
    assert result["waited"] >= 2


# -- the guard's life cycle, on each backend -----------------------------------------------------------------

@pytest.fixture(params=["echo", "transformers", pytest.param("llama-cpp", marks=pytest.mark.slow)])
def model(request: pytest.FixtureRequest) -> Generator:
    if request.param == "echo":
        return EchoGenerator(context_window=4096)
    if request.param == "transformers":
        from kb_assistant.generators.transformers_backend import TransformersGenerator

        return TransformersGenerator(request.getfixturevalue("tiny_glm"), device="cpu")
    from kb_assistant.generators.llama import LlamaCppGenerator

    return LlamaCppGenerator(request.getfixturevalue("bundled_gguf"), n_ctx=1024)


def answer(gen: Generator, **kw: object) -> Iterator[str]:
    return gen.stream(MESSAGES, max_tokens=16, temperature=0, **kw)  # type: ignore[arg-type]


def second_stream_completes(gen: Generator) -> str:
    """Run another whole stream in a thread; it must get the model (a hung guard would fail the join)."""
    out: list[str] = []
    t = threading.Thread(target=lambda: out.append("".join(answer(gen))))
    t.start()
    t.join(timeout=300)
    assert not t.is_alive(), "the model was never released"
    return out[0]


def test_a_stream_holds_the_model_only_while_it_runs(model: Generator) -> None:
    stream = answer(model)
    assert not model.busy  # created, not started: holds nothing
    next(stream)
    assert model.busy
    list(stream)
    assert not model.busy


def test_a_later_stream_waits_its_turn(model: Generator) -> None:
    alone = "".join(answer(model))
    first = answer(model)
    head = next(first)
    waiting = threading.Event()
    out: list[str] = []
    t = threading.Thread(target=lambda: out.append("".join(answer(model, on_wait=waiting.set))))
    t.start()
    assert waiting.wait(timeout=300), "the second stream did not report waiting"
    assert t.is_alive()  # it cannot run while the first holds the model
    assert head + "".join(first) == alone
    t.join(timeout=300)
    assert out == [alone] and not model.busy


def test_closing_a_stream_releases_the_model(model: Generator) -> None:
    stream = answer(model)
    next(stream)
    stream.close()  # type: ignore[attr-defined]
    assert not model.busy
    assert second_stream_completes(model)


def test_an_abandoned_stream_releases_the_model(model: Generator) -> None:
    stream = answer(model)
    next(stream)
    del stream
    gc.collect()
    assert not model.busy
    assert second_stream_completes(model)


def test_an_error_in_the_consumer_releases_the_model(model: Generator) -> None:
    def consume() -> None:
        for _ in answer(model):
            raise ValueError("the page went away")

    with pytest.raises(ValueError):
        consume()
    assert not model.busy
    assert second_stream_completes(model)


def test_a_stop_event_releases_the_model(model: Generator) -> None:
    stop = threading.Event()
    pieces = []
    for piece in answer(model, stop_event=stop):
        pieces.append(piece)
        stop.set()  # as a Stop button in another thread would
    assert len(pieces) == 1 and not model.busy
    assert second_stream_completes(model)


def test_a_waiting_stream_gives_up_when_stopped(model: Generator) -> None:
    first = answer(model)
    next(first)
    stop = threading.Event()
    out: list[list[str]] = []
    t = threading.Thread(target=lambda: out.append(list(answer(model, stop_event=stop, on_wait=stop.set))))
    t.start()
    t.join(timeout=300)
    assert out == [[]]  # stopped while waiting: no model call at all
    first.close()  # type: ignore[attr-defined]
    assert not model.busy


def test_the_same_thread_cannot_deadlock_on_its_own_stream() -> None:
    gen = EchoGenerator()
    first = answer(gen)
    next(first)
    with pytest.raises(RuntimeError, match="already streaming"):
        next(answer(gen))
    first.close()  # type: ignore[attr-defined]
    assert not gen.busy and "".join(answer(gen))


def test_backends_cannot_bypass_the_guard() -> None:
    with pytest.raises(TypeError, match="_stream_prompt"):
        class Sneaky(EchoGenerator):  # noqa: F841 - defining it is the test
            def stream_prompt(self, prompt: str, **kw: object) -> Iterator[str]:  # type: ignore[override]
                yield prompt


def test_counting_tokens_during_streams(model: Generator) -> None:
    """Budgeting a prompt does not wait for, or disturb, the running answers: llama.cpp's tokenizer reads only
    the vocabulary, transformers' fast tokenizer is only read after loading; counts stay exact meanwhile."""
    texts = ["北京是中华人民共和国的首都。", "Mixed 中文 and English 😀", model.render(MESSAGES)]
    expected = [model.count_tokens(t) for t in texts]
    streams = [threading.Thread(target=lambda: list(answer(model))) for _ in range(2)]
    for t in streams:
        t.start()
    counted = []
    while any(t.is_alive() for t in streams) or not counted:
        counted.append([model.count_tokens(t) for t in texts])
        assert model.render(MESSAGES) == texts[2]
    for t in streams:
        t.join()
    assert all(c == expected for c in counted)


def test_the_assistant_reports_waiting_for_the_model(tmp_path: Path) -> None:
    """The doors (web app, CLI) learn through Assistant.ask(on_wait=) that an answer waits for the model."""
    from kb_assistant.app import make_assistant, open_kb
    from kb_assistant.settings import load_settings

    settings = load_settings(min_relevance=0, check_answerable=False)  # the model must be called both times
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The server restarts every night at two o'clock.", encoding="utf-8")
    with open_kb(settings, "t") as kb:
        kb.index_paths([docs])
        first, second = make_assistant(settings, kb), make_assistant(settings, kb)
        assert first.generator is second.generator  # one loaded model for both
        running = iter(first.ask("When does the server restart?"))
        next(running)
        waiting = threading.Event()
        out: list[str] = []
        t = threading.Thread(target=lambda: out.append(
            second.ask("When does the server restart?", on_wait=waiting.set).result().text))
        t.start()
        assert waiting.wait(timeout=60)
        rest = "".join(running)
        t.join(timeout=60)
        assert out and out[0] and rest


def test_a_stream_abandoned_in_a_reference_cycle_does_not_block_its_thread() -> None:
    gen = EchoGenerator()

    class Holder:
        pass

    gc.disable()  # no automatic collection in between: only the guard's own collect may free the cycle
    try:
        holder = Holder()
        holder.me = holder  # type: ignore[attr-defined]  # a cycle: only the collector frees it
        holder.stream = answer(gen)  # type: ignore[attr-defined]
        next(holder.stream)  # type: ignore[attr-defined]
        del holder
        assert gen.busy
        assert "".join(answer(gen))  # the same thread asks again: the cycle is collected, not a deadlock
        assert not gen.busy
    finally:
        gc.enable()
