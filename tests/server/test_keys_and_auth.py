"""API keys (hashed, shown once, revocable) and the 401/403 matrix on the real server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from kb_assistant.cli import main
from kb_assistant.server.app import is_loopback
from kb_assistant.server.keys import KEYS_FILE, KeyStore
from kb_assistant.settings import Settings

from .conftest import Running, free_port, running_server


def test_keys_are_stored_hashed_and_revocable(settings: Settings) -> None:
    store = KeyStore(settings.data_dir)
    assert not store.any()
    key, token = store.create(scope="write", kb="docs", label="bot")
    assert store.any()
    assert token.encode() not in (settings.data_dir / KEYS_FILE).read_bytes()  # only its sha256 is kept
    found = store.check(token)
    assert found is not None and (found.id, found.scope, found.kb) == (key.id, "write", "docs")
    assert store.check(token + "x") is None
    store.revoke(key.id)
    assert store.check(token) is None
    assert store.any()  # a server that had keys keeps asking for one
    with pytest.raises(Exception, match="already revoked"):
        store.revoke(key.id)


def test_keys_cli_prints_the_token_once(capsys: pytest.CaptureFixture[str], settings: Settings) -> None:
    assert main(["keys", "create", "--scope", "admin", "--kb", "docs", "--label", "ci"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("kbk-") and KeyStore(settings.data_dir).check(token) is not None
    assert main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert token not in listing and "admin" in listing and "docs" in listing and "active" in listing
    key_id = listing.split()[0]
    assert main(["keys", "revoke", key_id]) == 0
    assert main(["keys", "list", "--json"]) == 0
    assert '"revoked": "' in capsys.readouterr().out
    assert main(["keys", "revoke", "nope"]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_refuses_a_public_address_without_keys(capsys: pytest.CaptureFixture[str], settings: Settings) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0")
    assert main(["serve", "--host", "0.0.0.0", "--port", str(free_port())]) == 1
    assert "no API key exists" in capsys.readouterr().err


def _status(client: httpx.Client, method: str, path: str, **kw: object) -> int:
    return client.request(method, path, **kw).status_code  # type: ignore[arg-type]


def test_auth_matrix(server: Running) -> None:
    with server.client() as anon:  # no key exists yet on loopback: open
        assert _status(anon, "GET", "/v1/models") == 200
    admin = server.key("admin")
    reader = server.key("read")
    docs_writer = server.key("write", kb="docs")
    other_reader = server.key("read", kb="other")
    revoked_key = server.key("read")
    store = KeyStore(server.settings.data_dir)
    found = store.check(revoked_key)
    assert found is not None
    store.revoke(found.id)
    search = ("POST", "/v1/kbs/docs/search", {"json": {"query": "VPN"}})

    with server.client() as anon:
        r = anon.get("/v1/models")
        assert r.status_code == 401 and "Bearer" in r.json()["error"]["message"]
        assert r.json()["error"]["code"] == "missing_api_key"
    with server.client("kbk-wrong") as wrong:
        assert wrong.get("/v1/models").status_code == 401
    with server.client(revoked_key) as revoked:
        r = revoked.post(search[1], **search[2])  # type: ignore[arg-type]
        assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Token {reader}"}) as malformed:
        assert malformed.get("/v1/models").status_code == 401

    with server.client(reader) as c:
        assert c.post(search[1], **search[2]).status_code == 200  # type: ignore[arg-type]
        r = c.post("/v1/kbs/docs/documents", files={"files": ("a.txt", b"hello")})
        assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_scope"
        assert c.post("/v1/kbs", json={"name": "new"}).status_code == 403
    with server.client(other_reader) as c:  # a key for another knowledge base
        r = c.post(search[1], **search[2])  # type: ignore[arg-type]
        assert r.status_code == 403 and r.json()["error"]["code"] == "wrong_kb"
        r = c.post("/v1/chat/completions", json={"model": "kb:docs", "messages": [{"role": "user", "content": "VPN?"}]})
        assert r.status_code == 403
        assert [m["id"] for m in c.get("/v1/models").json()["data"]] == ["echo"]  # docs is hidden
    with server.client(docs_writer) as c:
        assert c.post(search[1], **search[2]).status_code == 200  # type: ignore[arg-type]
        assert c.delete("/v1/kbs/docs").status_code == 403  # write is not admin
        assert c.post("/v1/kbs", json={"name": "mine"}).status_code == 403
    with server.client(admin) as c:
        assert c.post("/v1/kbs", json={"name": "made"}).status_code == 201
        assert c.delete("/v1/kbs/made").status_code == 200


def test_public_server_needs_a_key_even_before_one_exists(settings: Settings, docs_kb: str) -> None:
    with running_server(settings, require_keys=True) as server, server.client() as anon:
        assert anon.get("/v1/models").status_code == 401


def test_kb_serve_command_starts_the_server(settings: Settings) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.Popen([sys.executable, "-m", "kb_assistant", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "kb serve did not start"
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["data"][-1]["id"] == "echo"
        docs = httpx.get(f"http://127.0.0.1:{port}/docs")
        assert docs.status_code == 200 and "cdn" not in docs.text  # offline: Swagger UI comes from the server
        script = httpx.get(f"http://127.0.0.1:{port}/docs-assets/swagger-ui-bundle.js")
        assert '"/docs-assets/swagger-ui-bundle.js"' in docs.text and script.status_code == 200
        assert len(script.content) > 100_000
    finally:
        proc.terminate()
        proc.wait(30)
