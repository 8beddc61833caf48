"""When the model cites nothing, attribute each answer sentence to its best supporting source."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .sentences import split_sentences
from .textmatch import features as _features
from .types import Source

SHORT_ANSWER_CHARS = 12
MIN_SUPPORT = 0.5


@dataclass(frozen=True)
class Attribution:
    """Sentence ``start:end`` of the answer is supported by source ``number`` (0 = unsupported)."""

    start: int
    end: int
    number: int
    support: float


def support(claim: str, source_text: str) -> float:
    """Share of the claim's features found in the source, 0..1."""
    feats = _features(claim)
    return len(feats & _features(source_text, unigrams=True)) / len(feats) if feats else 0.0


sentences = split_sentences  # one splitter for answers, sources and prompts (kb_assistant/sentences.py)


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


def marker_position(answer: str, end: int) -> int:
    """Where a marker for a sentence ending near ``end`` goes: after the sentence's last character,
    before trailing spaces and line breaks, and never inside an abbreviation ("U.S.[1] Open" would
    read as a citation of "U.S."): a position that is no sentence end moves on to the next one."""
    while end > 0 and answer[end - 1].isspace():
        end -= 1
    ends = [e for _, e in split_sentences(answer)]
    return next((e for e in ends if e >= end), end)


def insert_markers(answer: str, attributions: Sequence[Attribution]) -> str:
    """Append ``[n]`` after each supported sentence, at a real sentence end (see ``marker_position``)."""
    at: dict[int, list[int]] = {}
    for a in attributions:
        if a.number:
            numbers = at.setdefault(marker_position(answer, a.end), [])
            if a.number not in numbers:
                numbers.append(a.number)
    out, last = [], 0
    for pos in sorted(at):
        out.append(answer[last:pos] + "".join(f"[{n}]" for n in at[pos]))
        last = pos
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
