"""The server shows a source with every field ``Source.to_dict`` records (heading path, stale mark among them),
in search results and in a chat completion's ``kb_sources`` alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from kb_assistant.settings import Settings

from .conftest import Running, running_server

HANDBOOK = "# Handbook\n\n## Network\n\nThe VPN server address is vpn-gw on port 1194, for staff only.\n"
LEAVE = "Every employee has fifteen days of paid annual leave a year."


@pytest.fixture
def marked(settings: Settings, tmp_path: Path) -> Iterator[Running]:
    """Knowledge base ``docs``: a markdown file with headings, and a text file emptied after indexing (stale)."""
    from kb_assistant.app import open_kb

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "handbook.md").write_text(HANDBOOK, encoding="utf-8")
    (folder / "leave.txt").write_text(LEAVE, encoding="utf-8")
    with open_kb(settings, "docs") as kb:
        kb.index_paths([folder])
        (folder / "leave.txt").write_text("", encoding="utf-8")  # unreadable now: its indexed text is kept, stale
        assert kb.index_paths([folder]).stale == 1
    with running_server(settings) as running:
        yield running


def _by_file(sources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {Path(s["file"]).name: s for s in sources}


def test_search_results_carry_heading_and_stale(marked: Running) -> None:
    with marked.client() as c:
        data = c.post("/v1/kbs/docs/search", json={"query": "VPN server address and annual leave", "top_k": 5}).json()
    hits = _by_file(data["data"])
    assert hits["handbook.md"]["heading"] == "Handbook > Network" and "stale" not in hits["handbook.md"]
    assert "empty" in hits["leave.txt"]["stale"]
    assert {"number", "file", "page", "start", "end", "relevance", "text"} <= set(hits["handbook.md"])


def test_chat_sources_carry_heading_and_stale(marked: Running) -> None:
    oa = openai.OpenAI(base_url=marked.v1, api_key="none", max_retries=0)
    resp = oa.chat.completions.create(model="kb:docs", messages=[
        {"role": "user", "content": "What is the VPN server address, and how many days of annual leave are there?"}])
    sources = _by_file((resp.model_extra or {})["kb_sources"])
    assert sources["handbook.md"]["heading"] == "Handbook > Network" and "stale" not in sources["handbook.md"]
    assert "empty" in sources["leave.txt"]["stale"]
    assert {"number", "relevance", "cited", "support", "quote"} <= set(sources["handbook.md"])
