"""The one sentence splitter: Chinese and English aware, never cutting inside "U.S.", "No. 1", "e.g." or "3.5".

Used for attributing answers, scoring evidence and checking support, so that a citation marker lands
where a sentence really ends and the spans shown to the user are the spans that were scored.
"""

from __future__ import annotations

import re

# Chinese full stops and exclamation/question marks always end a sentence; so does a line break.
# "；" ends one too: lists of settings ("a 设为 8；b 取 32") are separate claims.
_HARD_END = "。！？；!?…"
_CLOSERS = "」』”’）)]】\"'》"
# Abbreviations after which a full stop never ends a sentence (lower case, without the dot).
ALWAYS_ABBREVIATIONS = frozenset("""
mr mrs ms dr prof st jr sr vs al e.g i.e cf inc ltd co corp fig figs vol vols pp approx ca gen gov sen rep
lt col capt sgt mt ft dept univ est al jan feb mar apr jun jul aug sep sept oct nov dec
""".split())
# Abbreviations that stand before a number ("No. 1", "Art. 5", "p. 3"): not an end when a digit follows.
NUMBER_ABBREVIATIONS = frozenset("no nos nr art sec ch p pt op".split())
# Abbreviations that often end a sentence too: an end when a capital letter or Chinese follows.
AMBIGUOUS_ABBREVIATIONS = frozenset("etc".split())

_WORD_BEFORE = re.compile(r"([A-Za-z](?:[A-Za-z.]*[A-Za-z])?)$")
_ENUMERATOR = re.compile(r"(?:^|\n)[ \t]*\d{1,2}$")
_CLOSE = re.escape(_CLOSERS)
_SENTENCE_PIECE = re.compile(rf"[{_HARD_END}]+[{_CLOSE}]*|\.+[{_CLOSE}]*|\n")


def _dot_ends_sentence(text: str, dot: int, dots: int, after: int) -> bool:
    """Whether the ``dots`` full stop(s) at ``text[dot:]`` (closing quotes up to ``after``) end a sentence."""
    nxt = text[after:after + 1]
    if nxt and not nxt.isspace() and not ("\u3400" <= nxt <= "\u9fff"):
        return False  # "3.5", "v1.2.3", "example.org", "U.S" mid-token
    if dots > 1:
        return True  # an ellipsis "..."
    if _ENUMERATOR.search(text, max(0, dot - 8), dot):
        return False  # "1. " opening a list item
    m = _WORD_BEFORE.search(text, max(0, dot - 40), dot)
    if m is None:
        return True
    word = m.group(1)
    low = word.lower()
    following = text[after:].lstrip(" \t")
    if low in ALWAYS_ABBREVIATIONS or ("." in word and all(len(p) <= 2 for p in word.split("."))):
        return False  # "Mr.", "U.S.", "e.g.", "Ph.D." (but "example.org." ends a sentence)
    if len(word) == 1 and word.isupper():
        return False  # an initial: "J. R. R. Tolkien"
    if low in NUMBER_ABBREVIATIONS and following[:1].isdigit():
        return False  # "No. 1"
    if low in AMBIGUOUS_ABBREVIATIONS:
        return not following[:1].islower() and not following[:1].isdigit()
    return True


def split_sentences(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence, surrounding whitespace excluded, in order.

    A sentence ends after 。！？；!?… (with any closing quotes or brackets), at a line break, or at a
    full stop followed by a space, a Chinese character or the end, unless the full stop belongs to an
    abbreviation ("U.S.", "e.g.", "Mr."), an initial ("J. Smith") or a numbered reference ("No. 1").
    Text without any end is one sentence.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENTENCE_PIECE.finditer(text):
        if m.group().startswith("."):
            dots = len(m.group()) - len(m.group().lstrip("."))
            if not _dot_ends_sentence(text, m.start(), dots, m.end()):
                continue
        _add(text, start, m.end(), spans)
        start = m.end()
    _add(text, start, len(text), spans)
    return spans


def _add(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if stripped:
        lead = len(piece) - len(piece.lstrip())
        spans.append((start + lead, start + lead + len(stripped)))


def sentence_cuts(text: str) -> list[int]:
    """Offsets after which ``text`` may be cut at a sentence end (the last one excluded)."""
    return [end for _, end in split_sentences(text) if end < len(text.rstrip())]
