"""Answers as JSON and back, so a conversation survives reloads and restarts with its sources and flags."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from ..types import Answer, Citation, Source

# Turn states: queued (waiting behind another turn of the conversation), running, then done,
# stopped (the user stopped it; the partial answer is kept) or error.
PENDING = ("queued", "running")


@dataclass(frozen=True)
class ClaimView:
    """A sentence of an answer and whether the sources support it (from the answer stage's ``claims``)."""

    text: str
    supported: bool


@dataclass(frozen=True)
class Turn:
    """One question of a conversation and, once answered, its answer."""

    id: int
    conversation_id: int
    question: str
    status: str
    answer: Answer | None = None
    claims: tuple[ClaimView, ...] = ()
    error: str = ""
    created: float = 0.0

    @property
    def pending(self) -> bool:
        return self.status in PENDING


def claims_of(answer: Any) -> tuple[ClaimView, ...]:
    """The answer's claims as views; answers without the flag (older answer stages) have none."""
    out = []
    for claim in getattr(answer, "claims", ()) or ():
        text = getattr(claim, "text", None) or (claim.get("text") if isinstance(claim, dict) else None)
        supported = getattr(claim, "supported", None)
        if supported is None and isinstance(claim, dict):
            supported = claim.get("supported")
        if text:
            out.append(ClaimView(str(text), bool(supported if supported is not None else True)))
    return tuple(out)


def answer_to_json(answer: Answer, claims: tuple[ClaimView, ...] = ()) -> str:
    body = answer.to_dict()
    body["claims"] = [dataclasses.asdict(c) for c in claims]
    return json.dumps(body, ensure_ascii=False)


def _source(d: dict[str, Any]) -> Source:
    return Source(int(d.get("id", 0)), str(d.get("text", "")), str(d.get("file", "")), int(d.get("start", 0)),
                  int(d.get("end", 0)), float(d.get("score", 0.0)), d.get("page"), heading=str(d.get("heading", "")))


def answer_from_json(text: str) -> tuple[Answer, tuple[ClaimView, ...]]:
    """The stored answer and its claims; citations point at the same numbered sources as before."""
    body = json.loads(text)
    sources = tuple(_source(s) for s in body.get("sources", []))
    citations = []
    for c in body.get("citations", []):
        n = int(c["number"])
        if 1 <= n <= len(sources):
            quote = c.get("quote") or [None, None]
            citations.append(Citation(n, sources[n - 1], bool(c.get("inferred")), c.get("support"),
                                      quote[0], quote[1]))
    answer = Answer(str(body.get("question", "")), str(body.get("answer", "")), sources, tuple(citations),
                    int(body.get("prompt_tokens", 0)), bool(body.get("found", True)))
    claims = tuple(ClaimView(str(c["text"]), bool(c["supported"])) for c in body.get("claims", []))
    return answer, claims


def quote_text(citation: Citation) -> str:
    """The supporting span of a citation (its sentence in the source), else the whole passage."""
    s = citation.source
    if citation.quote_start is None or citation.quote_end is None:
        return s.text
    a = max(0, citation.quote_start - s.start)
    b = max(a, citation.quote_end - s.start)
    return s.text[a:b] or s.text
