"""The real server (uvicorn, in a thread) on a free loopback port, over a knowledge base of a few files,
with the hash embedder and a fast generator; a scripted slow generator for the queue and disconnect tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from kb_assistant.generators.base import ChatMessage, Generator
from kb_assistant.server import create_app
from kb_assistant.server.keys import KeyStore
from kb_assistant.settings import Settings, load_settings

DOCS = {
    "leave.txt": "员工休假制度。正式员工每年享有十五天带薪年假。病假需提供医院证明。",
    "vpn.md": "The VPN server address is vpn-gw on port 1194, for staff only.\n\nUse your staff login.",
    "canteen.txt": "The canteen opens at 7:00 and closes at 20:00 every day, weekends included.",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ScriptedGenerator(Generator):
    """Writes ``w0 w1 ...`` one word per token, ``delay`` seconds each, and records every call."""

    name = "scripted"
    context_window = 4096
    follows_citation_instructions = True

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: list[dict[str, Any]] = []
        self.stopped = 0
        self.tokens_written = 0
        self.counted: list[str] = []  # every text count_tokens was asked about

    def render(self, messages: Sequence[ChatMessage]) -> str:
        return "".join(f"<{m.role}>{m.content}" for m in messages) + "<assistant>"

    def count_tokens(self, text: str) -> int:
        self.counted.append(text)
        return len(text.split())

    def _stream_prompt(self, prompt: str, *, max_tokens: int, temperature: float,
                       stop_event: threading.Event | None) -> Iterator[str]:
        self.calls.append({"max_tokens": max_tokens, "temperature": temperature, "prompt": prompt})
        for i in range(max_tokens):
            if stop_event is not None and stop_event.is_set():
                self.stopped += 1
                return
            if self.delay:
                time.sleep(self.delay)
            self.tokens_written += 1
            yield f"w{i} "


@dataclass
class Running:
    """A live server: its base URL, app and settings."""

    url: str
    app: Any
    settings: Settings
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"

    def key(self, scope: str = "read", kb: str | None = None) -> str:
        return KeyStore(self.settings.data_dir).create(scope=scope, kb=kb)[1]

    def client(self, token: str | None = None, **kw: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kw)


@contextmanager
def running_server(settings: Settings, *, generator: Generator | None = None,
                   require_keys: bool = False) -> Iterator[Running]:
    import uvicorn

    app = create_app(settings, require_keys=require_keys, generator=generator)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield Running(f"http://127.0.0.1:{port}", app, settings)
    finally:
        server.should_exit = True
        thread.join(15)
        app.state.kb.close()


def write_docs(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
        paths.append(folder / name)
    return paths


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings()


@pytest.fixture
def docs_kb(settings: Settings, tmp_path: Path) -> str:
    """Knowledge base ``docs`` holding DOCS (hash embedder)."""
    from kb_assistant.app import open_kb

    with open_kb(settings, "docs") as kb:
        kb.index_paths(write_docs(tmp_path / "docs"))
    return "docs"


@pytest.fixture
def server(settings: Settings, docs_kb: str) -> Iterator[Running]:
    """The server on the echo generator (the test default), open (no key exists)."""
    with running_server(settings) as running:
        yield running
