"""One model, many clients: a bounded queue (429 with Retry-After past it), retrieval that never waits
for the model, and a client that leaves stopping its generation."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from kb_assistant.settings import load_settings

from .conftest import Running, ScriptedGenerator, running_server

CHAT = {"model": "scripted", "messages": [{"role": "user", "content": "go"}]}


@pytest.fixture
def slow(docs_kb: str) -> Iterator[tuple[Running, ScriptedGenerator]]:
    gen = ScriptedGenerator(delay=0.05)
    with running_server(load_settings(server={"queue_size": 1}), generator=gen) as running:
        yield running, gen


def _wait_for(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


def test_past_the_queue_requests_get_429_with_retry_after(slow: tuple[Running, ScriptedGenerator]) -> None:
    server, gen = slow
    gate = server.app.state.kb.gate
    results: list[httpx.Response] = []

    def ask(tokens: int) -> None:
        results.append(httpx.post(f"{server.v1}/chat/completions", json={**CHAT, "max_tokens": tokens}, timeout=60))

    first = threading.Thread(target=ask, args=(100,))  # 5 s of model time: the rest happens meanwhile
    first.start()
    _wait_for(lambda: gen.busy, "the first answer holds the model")
    second = threading.Thread(target=ask, args=(5,))
    second.start()
    _wait_for(lambda: gate.pending == 2, "the second request waits in the queue")
    refused = [httpx.post(f"{server.v1}/chat/completions", json=CHAT, timeout=60) for _ in range(3)]
    for r in refused:
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert r.json()["error"]["code"] == "queue_full" and "queue_size 1" in r.json()["error"]["message"]
    search = httpx.post(f"{server.v1}/kbs/docs/search", json={"query": "VPN"}, timeout=60)
    assert search.status_code == 200 and search.json()["data"]  # retrieval does not queue behind the model
    assert gate.pending == 2  # ... and was served while both chats were still running or waiting
    first.join(60)
    second.join(60)
    assert [r.status_code for r in results] == [200, 200]
    assert all(r.json()["choices"][0]["message"]["content"].startswith("w0 w1") for r in results)
    assert gate.pending == 0 and gate.refused == 3


def test_a_client_that_leaves_stops_its_generation(slow: tuple[Running, ScriptedGenerator]) -> None:
    server, gen = slow
    with httpx.stream("POST", f"{server.v1}/chat/completions", timeout=60,
                      json={**CHAT, "max_tokens": 2000, "stream": True}) as r:
        lines = r.iter_lines()
        seen = [next(lines) for _ in range(6)]  # a few tokens arrive, then the client hangs up
    assert any("w1" in line for line in seen)
    _wait_for(lambda: gen.stopped == 1, "the model was told to stop")
    _wait_for(lambda: not gen.busy and server.app.state.kb.gate.pending == 0, "the model and queue are free")
    assert gen.tokens_written < 2000
    r = httpx.post(f"{server.v1}/chat/completions", json={**CHAT, "max_tokens": 3}, timeout=60)
    assert r.json()["choices"][0]["message"]["content"] == "w0 w1 w2 "  # the server goes on


def test_a_waiting_client_that_leaves_never_runs(slow: tuple[Running, ScriptedGenerator]) -> None:
    server, gen = slow
    holder = threading.Thread(target=lambda: httpx.post(f"{server.v1}/chat/completions",
                                                        json={**CHAT, "max_tokens": 100}, timeout=60))
    holder.start()
    _wait_for(lambda: gen.busy, "the first answer holds the model")
    with pytest.raises(httpx.ReadTimeout):  # gives up while queued
        httpx.post(f"{server.v1}/chat/completions", json={**CHAT, "max_tokens": 50}, timeout=0.5)
    holder.join(60)
    _wait_for(lambda: server.app.state.kb.gate.pending == 0, "the queue is empty")
    assert [c["max_tokens"] for c in gen.calls] == [100]  # the abandoned request never reached the model


class Breaking(ScriptedGenerator):
    """Fails after two tokens, like a backend that crashes mid-answer."""

    name = "breaking"

    def _stream_prompt(self, prompt, *, max_tokens, temperature, stop_event):  # type: ignore[no-untyped-def]
        yield "w0 "
        yield "w1 "
        raise RuntimeError("backend fell over")


def test_a_model_failing_mid_stream_ends_the_stream_cleanly(docs_kb: str, caplog: pytest.LogCaptureFixture) -> None:
    gen = Breaking()
    with running_server(load_settings(), generator=gen) as server:
        with httpx.stream("POST", f"{server.v1}/chat/completions", timeout=60,
                          json={**CHAT, "model": "breaking", "stream": True}) as r:
            events = [line for line in r.iter_lines() if line]
        assert events[-1] == "data: [DONE]" and '"error"' in events[-2] and "server log" in events[-2]
        assert any("w1" in e for e in events)
        r = httpx.post(f"{server.v1}/chat/completions", json={**CHAT, "model": "breaking"}, timeout=60)
        assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
        assert not gen.busy and server.app.state.kb.gate.pending == 0  # the model and the queue are free
        assert httpx.get(f"{server.v1}/models").status_code == 200
    assert "backend fell over" in caplog.text


def test_server_settings_from_the_environment_and_their_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from kb_assistant.errors import SettingsError

    monkeypatch.setenv("KB_SERVER", '{"queue_size": 9, "max_messages": 50}')
    settings = load_settings()
    assert (settings.server.queue_size, settings.server.max_messages, settings.server.max_body_kb) == (9, 50, 1024)
    monkeypatch.setenv("KB_SERVER", '{"queue_size": -1}')
    with pytest.raises(SettingsError, match=r"server\.queue_size \(KB_SERVER or a \[server\] table\) = -1"):
        load_settings()
