"""Citation markers in answers: ``[1]``, ``[1, 3]``, ``[1][2]``, ``【2】``, ``[来源1]`` parsed and mapped."""

from __future__ import annotations

import re
from collections.abc import Sequence

from .types import Citation, Source

_MARKER = re.compile(
    r"[\[【]\s*(?:(?:source|sources|来源|资料|出处)\s*)?"
    r"(\d{1,3}(?:\s*[,，、;；]\s*\d{1,3})*)\s*[\]】]",
    re.IGNORECASE,
)


def cited_numbers(text: str) -> list[int]:
    """Every number inside citation markers, in order of first appearance."""
    seen: list[int] = []
    for match in _MARKER.finditer(text):
        for part in re.split(r"[,，、;；]", match.group(1)):
            n = int(part)
            if n not in seen:
                seen.append(n)
    return seen


def resolve_citations(text: str, sources: Sequence[Source]) -> tuple[str, tuple[Citation, ...]]:
    """Map markers to sources; markers that point at no source are removed from the text."""

    def keep_valid(match: re.Match[str]) -> str:
        numbers = [int(p) for p in re.split(r"[,，、;；]", match.group(1))]
        valid = [n for n in numbers if 1 <= n <= len(sources)]
        return "".join(f"[{n}]" for n in valid)

    cleaned = _MARKER.sub(keep_valid, text)
    cleaned = re.sub(r"[ \t]+([。，．.,!?！？])", r"\1", cleaned).strip()
    citations = tuple(Citation(n, sources[n - 1]) for n in cited_numbers(cleaned))
    return cleaned, citations
