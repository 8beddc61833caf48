"""Turning answers and passages into Streamlit markdown that never renders document content."""

from __future__ import annotations

import re

from ..types import Answer, Citation

# Every character Streamlit's markdown (CommonMark + directives like :red[...]) treats specially.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$&])")
_MARKER = re.compile(r"\\\[(\d{1,3})\\\]")


def escape_markdown(text: str) -> str:
    """Backslash-escape markdown and HTML so the text shows literally (``<script>``, ``[a](b)``)."""
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\n", "  \n")


def answer_markdown(answer: Answer, anchor: str) -> str:
    """The answer as literal text, with each valid ``[n]`` turned into a link to its source."""
    numbers = {n for n in range(1, len(answer.sources) + 1)}

    def link(match: re.Match[str]) -> str:
        n = int(match.group(1))
        return f"[\\[{n}\\]](#{anchor}-{n})" if n in numbers else match.group(0)

    return _MARKER.sub(link, escape_markdown(answer.text))


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
