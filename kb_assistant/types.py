"""Dataclasses that cross kb_assistant's seams: retrieved sources, citations, answers, reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Source:
    """A retrieved chunk: where it is (file, page, character span) and how well it matched."""

    id: int
    text: str
    source: str
    start: int
    end: int
    score: float
    page: int | None = None
    chunk_index: int = 0
    stale: str = ""  # why its file cannot be read now (the indexed text is an older version); "" = current
    heading: str = ""  # the headings above the chunk: "员工手册 > 第三章 休假 > 3.2 年假"

    @property
    def file_name(self) -> str:
        return Path(self.source).name

    @property
    def label(self) -> str:
        """``guide.pdf, p. 3`` or ``notes.md`` (``notes.md (stale)`` when the file is now unreadable)."""
        label = f"{self.file_name}, p. {self.page}" if self.page is not None else self.file_name
        return f"{label} (stale)" if self.stale else label

    @property
    def where(self) -> str:
        """The label with the heading path: ``handbook.docx · 员工手册 > 第三章 休假``."""
        return f"{self.label} · {self.heading}" if self.heading else self.label

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "file": self.source,
            "page": self.page,
            "start": self.start,
            "end": self.end,
            "score": round(self.score, 4),
            "heading": self.heading,
            "text": self.text,
            **({"stale": self.stale} if self.stale else {}),
        }


@dataclass(frozen=True)
class Citation:
    """Source ``number`` (1-based, as in the prompt) cited by the answer."""

    number: int
    source: Source
    inferred: bool = False  # True: the model gave no marker; we matched its sentence to this source
    support: float | None = None  # how much of the citing sentence the source contains, 0..1
    quote_start: int | None = None  # document offsets of the best-supporting sentence in the source
    quote_end: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "inferred": self.inferred, "support": self.support,
                "quote": [self.quote_start, self.quote_end], **self.source.to_dict()}


@dataclass(frozen=True)
class Claim:
    """One sentence of an answer and whether the sources support it.

    ``start:end`` is the sentence in the answer text; ``sources`` the supporting source numbers (best
    first, empty when unsupported); ``quote_start:quote_end`` the document offsets of the supporting
    sentence in the best source; ``reason`` says why an unsupported claim was judged so.
    """

    start: int
    end: int
    text: str
    supported: bool
    sources: tuple[int, ...] = ()
    support: float = 0.0
    quote_start: int | None = None
    quote_end: int | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "start": self.start, "end": self.end, "supported": self.supported,
                "sources": list(self.sources), "support": round(self.support, 3),
                "quote": [self.quote_start, self.quote_end], "reason": self.reason}


@dataclass(frozen=True)
class Answer:
    """A finished answer: text, the numbered sources it was given, and which of them it cites."""

    question: str
    text: str
    sources: tuple[Source, ...]
    citations: tuple[Citation, ...]
    prompt_tokens: int
    found: bool = True
    claims: tuple[Claim, ...] = ()  # per-sentence support, when it was checked

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "citations": [c.to_dict() for c in self.citations],
            "sources": [{"number": i, **s.to_dict()} for i, s in enumerate(self.sources, 1)],
            "prompt_tokens": self.prompt_tokens,
            "found": self.found,
            "claims": [c.to_dict() for c in self.claims],
        }


@dataclass
class FileOutcome:
    path: str
    status: str  # added | updated | moved | unchanged | removed | missing | skipped | failed
    chunks: int = 0
    reason: str = ""  # failed/skipped: why; moved: the old path


SUMMARY_STATUSES = ("added", "updated", "moved", "unchanged", "removed", "missing", "failed", "skipped")


@dataclass
class IndexReport:
    """What one indexing run did, file by file."""

    outcomes: list[FileOutcome] = field(default_factory=list)
    embedded: int = 0  # chunks the embedder computed in this run
    cached: int = 0  # chunks whose vectors came from the embedding cache
    stale: int = 0  # documents whose file is unreadable now, still searched in their indexed version
    notes: list[str] = field(default_factory=list)  # e.g. "chunk settings changed: run kb rebuild"

    def by_status(self, status: str) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def failed(self) -> list[FileOutcome]:
        return self.by_status("failed")

    def counts(self) -> dict[str, int]:
        """Files per status, every summary status present (0 when none)."""
        return {s: len(self.by_status(s)) for s in SUMMARY_STATUSES}

    def summary(self) -> str:
        chunks = sum(o.chunks for o in self.outcomes if o.status in ("added", "updated"))
        counts = ", ".join(f"{n} {s}" for s, n in self.counts().items())
        line = f"{counts}; {chunks} chunks stored ({self.embedded} embedded, {self.cached} from cache)"
        if self.stale:
            line += (f"; {self.stale} stale document{'s' if self.stale > 1 else ''} (files now unreadable, "
                     "old text still searched: fix them or use --prune)")
        return line
