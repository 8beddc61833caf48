"""Answers in the Chinese script of the question.

Asked in Traditional Chinese over Traditional documents, the bundled 0.5B model (trained mostly on
Simplified text) answers in a mix: "根据资料，马祖列島是隸屬中華民國的群島". A reader in Taiwan or Hong Kong
sees a sloppy answer, and the name the documents spell "馬祖" is no longer the documents' name. So when
the question is written in Traditional script, the answer's Simplified-only characters are converted
with OpenCC's dictionaries: its phrases where one matches (头发 -> 頭髮, 根据 -> 根據), elsewhere only
characters that exist in Simplified alone. A character valid in both scripts is otherwise left as the
model wrote it: OpenCC's own converter turns the village 后沃 into 後沃 and 坂里 into 坂裏, while the
documents, and the reader, write 后 and 里 there.

Only towards Traditional: Simplified is the model's own script, and turning a quote of a Traditional
document into Simplified would only move the answer away from its source.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

MAX_PHRASE = 6  # characters; longer OpenCC phrases are rare idioms


@dataclass(frozen=True)
class _Tables:
    simplified_only: dict[str, str]  # a character written only in Simplified -> its usual Traditional form
    traditional_only: frozenset[str]
    phrases: dict[str, str]  # a Simplified phrase -> its Traditional form, same length


@lru_cache(maxsize=1)
def _tables() -> _Tables:
    """From OpenCC's dictionaries: a character is one script's "only" when none of its conversions is
    itself (发 -> 發/髮; 后 -> 後/后 is valid in both)."""
    import opencc  # lazy: only its dictionary files are used

    folder = Path(opencc.__file__).parent / "dictionary"

    def rows(name: str) -> list[tuple[str, list[str]]]:
        lines = (folder / name).read_text(encoding="utf-8").splitlines()
        return [(key, targets.split()) for key, _, targets in (line.partition("\t") for line in lines) if targets]

    # Taiwan's standard forms (羣 -> 群, 裏 -> 裡, 着 -> 著): most Traditional readers are there, and 群 and 著
    # are then not "Simplified-only" when a question is judged
    taiwan = {key: targets[0] for key, targets in rows("TWVariants.txt")}

    def tw(text: str) -> str:
        return "".join(taiwan.get(c, c) for c in text)

    simplified = {key: tw(targets[0]) for key, targets in rows("STCharacters.txt")
                  if len(key) == 1 and key not in targets and key not in taiwan.values()}
    traditional = frozenset(key for key, targets in rows("TSCharacters.txt") if len(key) == 1 and key not in targets)
    phrases = {key: tw(targets[0]) for key, targets in rows("STPhrases.txt")
               if len(key) <= MAX_PHRASE and len(targets[0]) == len(key)}
    return _Tables(simplified, traditional, phrases)


def is_traditional(text: str) -> bool:
    """Written in Traditional script: more Traditional-only than Simplified-only characters."""
    t = _tables()
    return sum(c in t.traditional_only for c in text) > sum(c in t.simplified_only for c in text)


def to_traditional(text: str, kept: str = "") -> str:
    """``text`` in Traditional script: OpenCC's phrases where one matches (longest first: 根据 -> 根據,
    属于 -> 屬於), elsewhere only the Simplified-only characters; every other character kept. A phrase
    written in both scripts that occurs in ``kept`` (the sources) is the documents' own word, kept as
    they write it (周期 stays 周期 in a document that has it, where Taiwan's usage would be 週期)."""
    t = _tables()
    out: list[str] = []
    i = 0
    while i < len(text):
        for n in range(min(MAX_PHRASE, len(text) - i), 1, -1):
            span = text[i:i + n]
            phrase = t.phrases.get(span)
            if phrase is not None and not (span in kept and not any(c in t.simplified_only for c in span)):
                out.append(phrase)
                i += n
                break
        else:
            out.append(t.simplified_only.get(text[i], text[i]))
            i += 1
    return "".join(out)


def script_follower(question: str, sources: Sequence[str] = ()) -> Callable[[str], str] | None:
    """For a streamed answer to ``question``: a function turning each new piece into the question's
    script (``None`` when nothing needs converting). It sees the last few characters before the piece,
    so a phrase split across two pieces (头|发) still converts as a phrase. ``sources``: the sources' texts,
    whose own words are kept as in ``to_traditional`` when they are written in Traditional script."""
    if not is_traditional(question):
        return None
    kept = "\n".join(sources)  # joined only for a Traditional question: most answers never need it
    kept = kept if is_traditional(kept) else ""  # Simplified sources: their words are converted too
    tail = ""

    def follow(piece: str) -> str:
        nonlocal tail
        joined = to_traditional(tail + piece, kept)
        out = joined[len(tail):]
        tail = (tail + piece)[-3:]
        return out

    return follow
