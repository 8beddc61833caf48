"""The one place that knows how a chunk is stored: its payload in the vector store and back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ingest import Chunk

from ..types import Source


def chunk_payload(source: str, content_hash: str, chunk: Chunk, *, prefix_heading: bool = False) -> dict[str, Any]:
    """The JSON payload stored beside a chunk's vector; ``prefix_heading`` records that its heading path
    was embedded and keyword-indexed with its text (see ``indexed_text``)."""
    payload = {
        "source": source, "doc_hash": content_hash, "page": chunk.page, "start": chunk.start,
        "end": chunk.end, "index": chunk.index, "text": chunk.text,
    }
    if chunk.heading:
        payload["heading"] = chunk.heading
        if prefix_heading:
            payload["prefixed"] = True
    return payload


def indexed_text(payload: Mapping[str, Any]) -> str:
    """What is embedded and keyword-indexed for a stored chunk: its text, after its heading path when
    the knowledge base prefixes headings (KB_HEADING_PREFIX; bench/bench_documents.py measures it)."""
    if payload.get("prefixed") and payload.get("heading"):
        return f"{payload['heading']}\n{payload['text']}"
    return str(payload["text"])


def source_from_payload(id_: int, score: float, p: dict[str, Any]) -> Source:
    """A stored chunk as the ``Source`` that retrieval hands on, with ``score`` on the relevance scale."""
    return Source(
        id=id_, text=p["text"], source=p["source"], start=p["start"], end=p["end"], score=float(score),
        page=p.get("page"), chunk_index=p.get("index", 0), stale=p.get("stale") or "",
        heading=p.get("heading", ""),
    )
