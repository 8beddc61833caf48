"""When the model cites nothing, attribute each answer sentence to its best supporting source."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .types import Source

_WORD = re.compile(r"[a-z0-9]+|[\u3400-\u9fff]", re.IGNORECASE)
SHORT_ANSWER_CHARS = 12
MIN_SUPPORT = 0.5


@dataclass(frozen=True)
class Attribution:
    """Sentence ``start:end`` of the answer is supported by source ``number`` (0 = unsupported)."""

    start: int
    end: int
    number: int
    support: float


def _features(text: str) -> set[str]:
    """Lower-cased words plus CJK character bigrams: robust to word segmentation differences."""
    tokens = [t.lower() for t in _WORD.findall(text)]
    feats = {t for t in tokens if t.isascii()}
    cjk = [t for t in tokens if not t.isascii()]
    feats.update(a + b for a, b in zip(cjk, cjk[1:]))
    feats.update(cjk if len(cjk) < 3 else [])
    return feats


def support(claim: str, source_text: str) -> float:
    """Share of the claim's features found in the source, 0..1."""
    feats = _features(claim)
    return len(feats & _features(source_text)) / len(feats) if feats else 0.0


def sentences(text: str) -> list[tuple[int, int]]:
    spans = []
    for m in re.finditer(r"[^。！？!?\n]*?(?:[。！？!?]+|\.(?=\s|$)|\n|$)", text):
        if m.group().strip():
            spans.append((m.start(), m.end()))
    return spans


def attribute(answer: str, question: str, sources: Sequence[Source]) -> list[Attribution]:
    """Best source per sentence by character overlap; a short answer ("15天") is judged together
    with the question it answers, since alone it carries too little to match."""
    result = []
    for start, end in sentences(answer):
        claim = answer[start:end]
        if len(claim.strip()) < SHORT_ANSWER_CHARS:
            claim = f"{question} {claim}"
        scores = [support(claim, s.text) for s in sources]
        best = max(range(len(scores)), key=scores.__getitem__) if scores else -1
        if best >= 0 and scores[best] >= MIN_SUPPORT:
            result.append(Attribution(start, end, best + 1, scores[best]))
        else:
            result.append(Attribution(start, end, 0, max(scores, default=0.0)))
    return result


def insert_markers(answer: str, attributions: Sequence[Attribution]) -> str:
    """Append ``[n]`` after each supported sentence (before a trailing line break)."""
    out, last = [], 0
    for a in attributions:
        out.append(answer[last:a.start])
        sentence = answer[a.start:a.end]
        if a.number:
            stripped = sentence.rstrip("\n")
            sentence = f"{stripped}[{a.number}]{sentence[len(stripped):]}"
        out.append(sentence)
        last = a.end
    out.append(answer[last:])
    return "".join(out)


def best_span(claim: str, source: Source) -> tuple[int, int, float]:
    """The source sentence that best supports ``claim``: document offsets and its support, 0..1.

    Offsets are ``source.start`` plus the sentence's position in the chunk, so the UI can highlight
    the passage in the original file (or page).
    """
    best = (source.start, source.end, 0.0)
    for start, end in sentences(source.text):
        score = support(claim, source.text[start:end])
        if score > best[2]:
            best = (source.start + start, source.start + end, score)
    return best
