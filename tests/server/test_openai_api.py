"""/v1/models and /v1/chat/completions driven by the official openai client and by raw HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from kb_assistant.generators.base import ChatMessage
from kb_assistant.generators.echo import EchoGenerator
from kb_assistant.settings import Settings

from .conftest import Running, ScriptedGenerator, running_server

QUESTION = "What is the VPN server address?"


def client(server: Running, key: str = "none") -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key=key, max_retries=0)


def test_models_lists_knowledge_bases_and_the_model(server: Running) -> None:
    ids = [m.id for m in client(server).models.list()]
    assert ids == ["kb:docs", "echo"]


def test_chat_answers_from_the_knowledge_base_with_sources(server: Running) -> None:
    resp = client(server).chat.completions.create(model="kb:docs", messages=[{"role": "user", "content": QUESTION}])
    text = resp.choices[0].message.content or ""
    assert "vpn-gw" in text and "[1]" in text, text
    extra = resp.model_extra or {}
    sources = extra["kb_sources"]
    assert extra["kb_found"] is True
    cited = [s for s in sources if s["cited"]]
    assert cited and cited[0]["file"].endswith("vpn.md") and cited[0]["number"] == 1
    assert {"page", "start", "end", "relevance", "support", "quote"} <= set(cited[0])
    assert resp.usage is not None and resp.usage.prompt_tokens > 0
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_streamed_chat_ends_with_sources_and_done(server: Running) -> None:
    stream = client(server).chat.completions.create(
        model="kb:docs", messages=[{"role": "user", "content": QUESTION}], stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "vpn-gw" in text and len(chunks) > 3
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    extra = last.model_extra or {}
    assert any(s["cited"] and s["file"].endswith("vpn.md") for s in extra["kb_sources"])
    assert "[1]" in extra["kb_answer"]
    with httpx.stream("POST", f"{server.v1}/chat/completions", json={
            "model": "kb:docs", "messages": [{"role": "user", "content": QUESTION}], "stream": True}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line]
    assert events[-1] == "data: [DONE]"
    assert all(e.startswith("data: ") for e in events)
    assert "kb_sources" in json.loads(events[-2][6:])


def test_history_carries_the_conversation(server: Running) -> None:
    resp = client(server).chat.completions.create(model="kb:docs", messages=[
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": "vpn-gw [1]."},
        {"role": "user", "content": "And which port?"}])
    assert resp.choices[0].message.content


def test_bare_model_usage_is_counted_with_the_models_tokenizer(server: Running) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say something."}]
    resp = client(server).chat.completions.create(model="echo", messages=messages)  # type: ignore[arg-type]
    text = resp.choices[0].message.content or ""
    echo = EchoGenerator()  # one token per character
    assert resp.usage is not None
    assert resp.usage.completion_tokens == echo.count_tokens(text) > 0
    assert resp.usage.prompt_tokens == echo.count_prompt([ChatMessage("system", "Be brief."),
                                                          ChatMessage("user", "Say something.")])
    assert "kb_sources" not in (resp.model_extra or {})


@pytest.fixture
def scripted(settings: Settings, docs_kb: str):  # type: ignore[no-untyped-def]
    gen = ScriptedGenerator()
    with running_server(settings, generator=gen) as running:
        yield running, gen


def test_temperature_max_tokens_and_stop_are_honoured(scripted) -> None:  # type: ignore[no-untyped-def]
    server, gen = scripted
    oa = client(server)
    resp = oa.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "go"}],
                                      max_tokens=7, temperature=0.7)
    assert gen.calls[-1]["max_tokens"] == 7 and gen.calls[-1]["temperature"] == 0.7
    assert resp.choices[0].message.content == "w0 w1 w2 w3 w4 w5 w6 "
    assert resp.choices[0].finish_reason == "length"
    assert resp.usage is not None and resp.usage.completion_tokens == 7

    written = gen.tokens_written
    resp = oa.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "go"}],
                                      max_tokens=500, stop=["w3", "never"])
    assert resp.choices[0].message.content == "w0 w1 w2 "
    assert resp.choices[0].finish_reason == "stop"
    assert gen.tokens_written - written < 10  # the model was stopped, not run to max_tokens
    chunks = list(oa.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "go"}],
                                             max_tokens=500, stop="w2", stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "w0 w1 "

    oa.chat.completions.create(model="kb:docs", messages=[{"role": "user", "content": "Which port does the VPN use?"}],
                               max_tokens=5, temperature=0.3)
    assert gen.calls[-1]["max_tokens"] == 5 and gen.calls[-1]["temperature"] == 0.3
    assert "vpn-gw" in gen.calls[-1]["prompt"]  # the kb path: retrieved sources in the prompt


@pytest.mark.parametrize("stream", [False, True])
def test_the_completion_is_counted_once(scripted, stream: bool) -> None:  # type: ignore[no-untyped-def]
    server, gen = scripted
    with httpx.Client(timeout=60) as c:
        r = c.post(f"{server.v1}/chat/completions", json={
            "model": "scripted", "max_tokens": 4, "stream": stream, "messages": [{"role": "user", "content": "go"}]})
    assert r.status_code == 200 and ("completion_tokens" in r.text)
    assert gen.counted.count("w0 w1 w2 w3 ") == 1  # for finish_reason and usage alike


def _error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and {"message", "type", "param", "code"} <= set(body["error"])
    return body["error"]


def test_bad_requests_get_openai_errors_and_the_server_stays_up(server: Running) -> None:
    url = f"{server.v1}/chat/completions"
    user = [{"role": "user", "content": "hi"}]
    err = _error(httpx.post(url, content=b"{not json", headers={"content-type": "application/json"}), 400)
    assert "not valid JSON" in err["message"]
    err = _error(httpx.post(url, json={"model": "kb:docs"}), 400)
    assert "messages" in err["message"] and err["param"] == "messages"
    err = _error(httpx.post(url, json={"model": "kb:nope", "messages": user}), 404)
    assert "nope" in err["message"] and err["code"] == "kb_not_found"
    err = _error(httpx.post(url, json={"model": "gpt-4", "messages": user}), 404)
    assert "kb:NAME" in err["message"]
    err = _error(httpx.post(url, json={"model": "kb:docs", "messages": user, "max_tokens": 10**6}), 400)
    assert "max_tokens" in err["message"] and err["param"] == "max_tokens"
    err = _error(httpx.post(url, json={"model": "kb:docs", "messages": user, "n": 3}), 400)
    assert err["param"] == "n"
    err = _error(httpx.post(url, json={"model": "kb:docs", "messages": user, "temperature": 5}), 400)
    assert "temperature" in err["message"]
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}"} for i in range(1001)]
    err = _error(httpx.post(url, json={"model": "kb:docs", "messages": history}), 400)
    assert "1001 messages" in err["message"]
    big = json.dumps({"model": "kb:docs", "messages": [{"role": "user", "content": "x" * (2 << 20)}]})
    err = _error(httpx.post(url, content=big, headers={"content-type": "application/json"}), 413)
    assert "limit" in err["message"]

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield big[:100].encode()
        for _ in range(4):
            yield b" " * (1 << 20)

    err = _error(httpx.post(url, content=chunked(), headers={"content-type": "application/json"}), 413)
    assert err["code"] == "body_too_large"
    _error(httpx.get(f"{server.v1}/nothing"), 404)

    with pytest.raises(openai.NotFoundError, match="kb:NAME"):
        client(server).chat.completions.create(model="gpt-4", messages=user)  # type: ignore[arg-type]
    assert httpx.get(f"{server.v1}/models").status_code == 200
