"""Which question a turn searches with and which history the model sees.

A question is a follow-up because retrieval says so, not because it is short: it is searched alone
and, when there is an earlier answered question, together with it. It counts as a follow-up when the
earlier turn makes the evidence clearly stronger and the question alone is not already well answered,
or when it reads as one ("那第二条呢？", "what about …") and the search together with the earlier
question still finds relevant sources. Only a follow-up shows the model earlier turns, and never turns that were
answered "not found": an unanswerable question must not leak into a later answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .generators.base import ChatMessage
from .types import Source

# Words that refer back ("那第二条呢？", "what about the second?"); a bare "吗" ends any yes/no question.
_CUE = re.compile(r"^(那|那么|还有|它|他|她|这|该|其|and |what about |how about |and the |and what )", re.I)
_SHORT_NE = re.compile(r"^.{1,8}呢[？?]?$")
STRONG = 0.6  # a question whose own best source is this relevant is never a follow-up
MARGIN = 0.05  # how much stronger the earlier turn must make the evidence
HISTORY_TURNS = 2  # exchanges a follow-up shows the model (the budget may drop the oldest)

Search = Callable[[str, int], list[Source]]


@dataclass(frozen=True)
class TurnPlan:
    """What one turn searched, what it found, and the history the model is given."""

    query: str
    sources: list[Source]
    follow_up: bool
    history: tuple[ChatMessage, ...]


def _best(sources: Sequence[Source]) -> float:
    return max((s.score for s in sources), default=0.0)


def answered_turns(history: Sequence[ChatMessage], refusals: Sequence[str]) -> list[tuple[ChatMessage, ChatMessage]]:
    """``(user, assistant)`` pairs of the history whose answer was not a refusal, oldest first."""
    pairs = []
    for i in range(len(history) - 1):
        asked, answer = history[i], history[i + 1]
        if asked.role == "user" and answer.role == "assistant" and not any(
                answer.content.strip().startswith(r) for r in refusals):
            pairs.append((asked, answer))
    return pairs


def plan_turn(search: Search, question: str, history: Sequence[ChatMessage], k: int, *,
              refusals: Sequence[str] = ()) -> TurnPlan:
    """Search for ``question`` and decide whether it follows up the last answered question."""
    alone = search(question, k)
    pairs = answered_turns(history, refusals)
    if not pairs:
        return TurnPlan(question, alone, False, ())
    cue = bool(_CUE.search(question.strip()) or _SHORT_NE.match(question.strip()))
    if _best(alone) >= STRONG and not cue:
        return TurnPlan(question, alone, False, ())
    query = f"{pairs[-1][0].content}\n{question}"
    together = search(query, k)
    follows = bool(together) if cue else _best(together) - _best(alone) >= MARGIN and _sharpens(
        search, pairs[-1][0].content, together, k)
    if follows:
        shown = tuple(m for pair in pairs[-HISTORY_TURNS:] for m in pair)
        return TurnPlan(query, together, True, shown)
    return TurnPlan(question, alone, False, ())


def _sharpens(search: Search, previous: str, together: Sequence[Source], k: int) -> bool:
    """Whether the new question adds to the earlier one's search (a follow-up narrows or moves it);
    an unrelated question leaves the earlier question's best source on top, no stronger."""
    before = search(previous, k)
    if not before or not together:
        return bool(together)
    return together[0].id != before[0].id or _best(together) >= _best(before) + MARGIN / 2
