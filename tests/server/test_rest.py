"""The REST API for knowledge bases: create, list, delete; uploads into background jobs with per-file
outcomes; documents; search; /v1/embeddings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest

from kb_assistant.settings import load_settings

from .conftest import Running, running_server


@pytest.fixture
def limited(docs_kb: str) -> Iterator[Running]:
    """Files over 1 MB are refused, upload requests over 2 MB get 413."""
    with running_server(load_settings(max_file_mb=1, server={"max_upload_mb": 2})) as running:
        yield running


def wait_job(c: httpx.Client, job: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
        job = c.get(f"/v1/jobs/{job['id']}").json()
    return job


def test_knowledge_bases_are_created_listed_and_deleted(limited: Running) -> None:
    with limited.client() as c:
        assert c.post("/v1/kbs", json={"name": "手册"}).status_code == 201
        assert c.post("/v1/kbs", json={"name": "手册"}).json()["error"]["code"] == "kb_exists"
        err = c.post("/v1/kbs", json={"name": "../x"})
        assert err.status_code == 400 and "invalid knowledge-base name" in err.json()["error"]["message"]
        rows = {r["name"]: r for r in c.get("/v1/kbs").json()["data"]}
        assert set(rows) == {"docs", "手册"} and rows["docs"]["documents"] == 3 and rows["手册"]["chunks"] == 0
        assert "kb:手册" in [m["id"] for m in c.get("/v1/models").json()["data"]]
        assert c.delete("/v1/kbs/手册").status_code == 200
        assert c.post("/v1/kbs/手册/search", json={"query": "x"}).status_code == 404
        assert c.delete("/v1/kbs/手册").status_code == 404


def test_upload_job_search_and_remove(limited: Running) -> None:
    files = [("files", ("policy.txt", b"Travel must be booked twelve days ahead through the portal.")),
             ("files", ("说明.md", "# 报销\n\n报销单需在每月五日前提交给财务部。".encode())),
             ("files", ("tool.exe", b"MZ\x00\x00")),
             ("files", ("huge.txt", b"word " * 300_000))]  # 1.5 MB: over max_file_mb
    with limited.client() as c:
        r = c.post("/v1/kbs/docs/documents", files=files)
        assert r.status_code == 202, r.text
        job = wait_job(c, r.json())
        assert job["state"] == "done" and job["error"] is None
        outcome = {f["name"]: f for f in job["files"]}
        assert outcome["policy.txt"]["status"] == "added" and outcome["policy.txt"]["chunks"] >= 1
        assert outcome["说明.md"]["status"] == "added"
        assert outcome["tool.exe"]["status"] == "refused" and "cannot be indexed" in outcome["tool.exe"]["reason"]
        assert outcome["huge.txt"]["status"] == "refused" and "max_file_mb" in outcome["huge.txt"]["reason"]
        assert job["progress"] == {"done": 2, "total": 2}

        hits = c.post("/v1/kbs/docs/search", json={"query": "How far ahead must travel be booked?", "top_k": 2})
        top = hits.json()["data"][0]
        assert top["file"].endswith("policy.txt") and top["number"] == 1 and 0 < top["relevance"] <= 1
        docs = {d["name"]: d for d in c.get("/v1/kbs/docs/documents").json()["data"]}
        assert {"policy.txt", "说明.md", "vpn.md", "leave.txt", "canteen.txt"} == set(docs)

        again = wait_job(c, c.post("/v1/kbs/docs/documents", files=files[:1]).json())  # same bytes again
        assert again["files"][0]["status"] == "unchanged"

        r = c.delete("/v1/kbs/docs/documents", params={"file": docs["policy.txt"]["file"]})
        assert r.status_code == 200 and r.json()["files"][0]["status"] == "removed"
        names = {d["name"] for d in c.get("/v1/kbs/docs/documents").json()["data"]}
        assert "policy.txt" not in names and "vpn.md" in names
        assert not Path(docs["policy.txt"]["file"]).exists()  # the stored upload went with it
        assert Path(docs["说明.md"]["file"]).exists()
        r = c.delete("/v1/kbs/docs/documents", params={"file": "/nowhere/x.txt"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "document_not_found"
        assert c.get("/v1/jobs/nope").status_code == 404
        assert c.delete("/v1/kbs/docs").status_code == 200
    assert not (limited.settings.data_dir / "uploads" / "docs").exists()


@pytest.mark.parametrize("name", ["../../evil.txt", "sub/evil.txt", "..\\evil.txt", "/etc/evil.txt", ".."])
def test_path_traversal_names_refuse_the_whole_upload(limited: Running, name: str) -> None:
    with limited.client() as c:
        r = c.post("/v1/kbs/docs/documents", files=[("files", ("ok.txt", b"fine text")), ("files", (name, b"bad"))])
        assert r.status_code == 400 and r.json()["error"]["code"] == "unsafe_file_name", r.text
        assert len(c.get("/v1/kbs/docs/documents").json()["data"]) == 3  # nothing added, nothing lost
    assert not list(limited.settings.data_dir.rglob("evil.txt"))


def test_oversized_and_malformed_uploads(limited: Running) -> None:
    with limited.client() as c:
        r = c.post("/v1/kbs/docs/documents", files=[("files", ("big.txt", b"x" * (3 << 20)))])
        assert r.status_code == 413 and "max_upload_mb" in r.json()["error"]["message"]
        r = c.post("/v1/kbs/docs/documents", json={"files": []})
        assert r.status_code == 400 and "multipart" in r.json()["error"]["message"]
        r = c.post("/v1/kbs/docs/documents", data={"note": "no files"}, files=[])
        assert r.status_code == 400
        assert c.post("/v1/kbs/none/documents", files=[("files", ("a.txt", b"x"))]).status_code == 404
        assert len(c.get("/v1/kbs/docs/documents").json()["data"]) == 3


def test_embeddings_use_the_knowledge_bases_embedder(server: Running) -> None:
    from kb_assistant.embedders import make_embedder

    oa = openai.OpenAI(base_url=server.v1, api_key="none", max_retries=0)
    resp = oa.embeddings.create(model="kb:docs", input=["年假有几天？", "VPN port"])
    vectors = np.array([d.embedding for d in resp.data], dtype=np.float32)
    expected = make_embedder(server.settings.embedder).embed_documents(["年假有几天？", "VPN port"])
    assert vectors.shape == (2, 256) and np.allclose(vectors, expected, atol=1e-6)
    raw = httpx.post(f"{server.v1}/embeddings", json={"model": "kb:docs", "input": "VPN port"}).json()
    assert np.allclose(raw["data"][0]["embedding"], expected[1], atol=1e-6) and raw["usage"]["prompt_tokens"] > 0
    with pytest.raises(openai.NotFoundError):
        oa.embeddings.create(model="text-embedding-3-small", input="x")
    with pytest.raises(openai.NotFoundError):
        oa.embeddings.create(model="kb:none", input="x")


def test_a_knowledge_base_that_cannot_be_opened_can_still_be_deleted(server: Running) -> None:
    """Deleting checks that the knowledge base exists without opening it (a broken one can go too)."""
    manifest = server.settings.kb_root / "docs" / "manifest.json"
    manifest.write_text("{ not json", encoding="utf-8")
    with server.client() as c:
        assert c.post("/v1/kbs/docs/search", json={"query": "VPN"}).status_code >= 400  # opening it fails
        r = c.delete("/v1/kbs/docs")
        assert r.status_code == 200 and r.json()["deleted"] is True, r.text
        assert c.get("/v1/kbs").json()["data"] == [] and c.delete("/v1/kbs/docs").status_code == 404
