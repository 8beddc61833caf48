"""The one place that knows how a chunk is stored: its payload in the vector store and back."""

from __future__ import annotations

from typing import Any

from ingest import Chunk

from ..types import Source


def chunk_payload(source: str, content_hash: str, chunk: Chunk) -> dict[str, Any]:
    """The JSON payload stored beside a chunk's vector."""
    return {
        "source": source, "doc_hash": content_hash, "page": chunk.page, "start": chunk.start,
        "end": chunk.end, "index": chunk.index, "text": chunk.text,
    }


def source_from_payload(id_: int, score: float, p: dict[str, Any]) -> Source:
    """A stored chunk as the ``Source`` that retrieval hands on, with ``score`` on the relevance scale."""
    return Source(
        id=id_, text=p["text"], source=p["source"], start=p["start"], end=p["end"], score=float(score),
        page=p.get("page"), chunk_index=p.get("index", 0), stale=p.get("stale") or "",
    )
