"""Answer quality as users feel it: is the gold in the answer, is it cited, is anything made up, and
how long it takes; over the whole set, with distractors (``noise``) or without the answer (``unanswerable``)."""

from __future__ import annotations

import random
import re
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .evaluation import EvalQuestion, EvalSet, contains_answer, f1_score, normalise_answer

# Refusals the model writes itself (besides our own "not found" messages): counted as honest
# rejections on unanswerable questions. Kept narrow so that a hedged real answer is not counted.
_REFUSAL = re.compile(
    r"没有(?:找到|提到|提及|相关|说明|给出|包含)|未(?:提及|提到|找到|说明|给出)|无法(?:回答|确定|找到|得知)|不知道|"
    r"并未(?:提及|提到|说明)|(?:does|do|did) not (?:contain|mention|say|specify|provide|state)|"
    r"(?:is|are) not (?:mentioned|specified|provided|stated|given)|no (?:information|mention)|"
    r"not (?:found|available) in|cannot (?:answer|be determined|find)|can't (?:answer|find)|"
    r"unable to (?:answer|find|determine)|i don't know",
    re.IGNORECASE,
)


def not_found_messages() -> tuple[str, ...]:
    """Every fixed "not found" message the assistant module defines (``NOT_FOUND*`` constants), so a
    new pipeline's own wording is recognised without editing this file."""
    from . import assistant

    return tuple(v for k, v in vars(assistant).items() if k.startswith("NOT_FOUND") and isinstance(v, str))


def is_not_found(answer: Any, messages: Sequence[str] | None = None) -> bool:
    """The assistant said "not found": ``found`` is False, or the text is (or starts with) its message."""
    if getattr(answer, "found", True) is False:
        return True
    text = normalise_answer(answer.text)
    return any(text.startswith(normalise_answer(m)) for m in (messages or not_found_messages()) if m)


def is_refusal(answer: Any, messages: Sequence[str] | None = None) -> bool:
    """Not found, or the model itself says the sources do not give the answer."""
    return is_not_found(answer, messages) or bool(_REFUSAL.search(answer.text))


@dataclass
class AnswerRecord:
    """One answered question, scored."""

    qid: str
    question: str
    answer: str
    answerable: bool
    contains_gold: bool
    f1: float
    not_found: bool
    refused: bool
    citations: int  # distinct cited sources
    good_citations: int  # cited sources holding a gold answer or belonging to a gold document
    cites_gold_doc: bool  # some citation is a gold document (every gold document, multi-part)
    claims: int | None  # None: the Answer has no ``claims``
    unsupported: int
    ttft: float  # seconds to the first streamed piece
    total: float
    prompt_tokens: int
    gold_in_model_words: bool = False  # contains gold before any quote appended (nonanswer.py)


def score_answer(q: EvalQuestion, answer: Any, *, ttft: float = 0.0, total: float = 0.0,
                 answerable: bool = True, messages: Sequence[str] | None = None) -> AnswerRecord:
    """Score one ``Answer`` against the question's gold.

    Contains gold: any answer entry inside the normalised answer (every entry for a multi-part
    question). F1: the best entry's (the mean over parts for a multi-part question). A citation is
    good when its source text holds a gold entry or its file is a gold paragraph. Claims are read
    with ``getattr(answer, "claims", ())``: per-sentence records with a boolean ``supported``."""
    from .nonanswer import model_words

    text = answer.text
    golds = q.answers

    def holds(t: str) -> bool:  # every part of a multi-part question, else any entry
        return bool(golds) and (all if q.all_parts else any)(contains_answer(t, g) for g in golds)

    contains, in_own = holds(text), holds(model_words(text))
    if not golds:
        f1 = 0.0
    elif q.all_parts:
        f1 = statistics.mean(f1_score(text, g) for g in golds)
    else:
        f1 = max(f1_score(text, g) for g in golds)
    gold_docs = set(q.gold_docs)
    cited: dict[tuple[str, int], Any] = {}
    for c in answer.citations:
        cited.setdefault((c.source.source, c.source.id), c.source)
    cited_files = {_file(s.source) for s in cited.values()}
    good = sum(_file(s.source) in gold_docs or any(contains_answer(s.text, g) for g in golds)
               for s in cited.values())
    claims = getattr(answer, "claims", None)
    n_claims = None if claims is None else len(claims)
    unsupported = sum(not _supported(c) for c in claims or ())
    return AnswerRecord(
        q.qid, q.text, text, answerable, contains, round(f1, 4), is_not_found(answer, messages),
        is_refusal(answer, messages), len(cited), good, bool(cited) and gold_docs <= cited_files, n_claims,
        unsupported, ttft, total, int(getattr(answer, "prompt_tokens", 0)), in_own,
    )


def _file(source: str) -> str:
    return source.replace("\\", "/").rsplit("/", 1)[-1]


def _supported(claim: Any) -> bool:
    return bool(claim.get("supported", True) if isinstance(claim, dict) else getattr(claim, "supported", True))


def _rate(num: float, den: float) -> float | None:
    return round(num / den, 4) if den else None


def _timing(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "p50": None}
    return {"mean": round(statistics.mean(values), 3), "p50": round(statistics.median(values), 3)}


def summarise(records: Sequence[AnswerRecord]) -> dict[str, Any]:
    """Rates over answerable questions (and, separately, honest rejection over unanswerable ones).

    - contains_gold, f1: per question, averaged; gold_in_model_words: contains gold before any quote
      the assistant appends after a reply that does not answer (the model's own words);
    - citation_coverage: of the answers containing gold, the share whose citations include the gold
      paragraph's document;
    - citation_precision: of all distinct sources cited by answers to answerable questions, the share
      holding a gold answer text or being a gold paragraph;
    - unsupported_rate: unsupported claims / claims, "n/a" (None) when answers carry no claims;
    - not_found_rate: answerable questions answered "not found" (a false rejection);
    - honest_rejection: unanswerable questions answered "not found" or refused by the model;
    - ttft_s: time to the first piece of the answers that are not "not found" (those the model wrote;
      a "not found" comes straight after retrieval), total_s: of every answer; mean and median."""
    ans = [r for r in records if r.answerable]
    una = [r for r in records if not r.answerable]
    hits = [r for r in ans if r.contains_gold]
    with_claims = [r for r in ans if r.claims is not None]
    claims = sum(r.claims or 0 for r in with_claims)
    return {
        "questions": len(ans),
        "unanswerable": len(una),
        "contains_gold": _rate(len(hits), len(ans)),
        "gold_in_model_words": _rate(sum(r.gold_in_model_words for r in ans), len(ans)),
        "f1": _rate(sum(r.f1 for r in ans), len(ans)),
        "citation_coverage": _rate(sum(r.cites_gold_doc for r in hits), len(hits)),
        "citation_precision": _rate(sum(r.good_citations for r in ans), sum(r.citations for r in ans)),
        "uncited_answers": _rate(sum(r.citations == 0 for r in ans if not r.not_found), len(ans)),
        "unsupported_rate": _rate(sum(r.unsupported for r in with_claims), claims) if with_claims else "n/a",
        "not_found_rate": _rate(sum(r.not_found for r in ans), len(ans)),
        "honest_rejection": _rate(sum(r.refused for r in una), len(una)),
        "ttft_s": _timing([r.ttft for r in records if not r.not_found]),
        "total_s": _timing([r.total for r in records]),
        "mean_prompt_tokens": round(statistics.mean(r.prompt_tokens for r in records), 1) if records else 0,
    }


# -- which paragraphs each question's knowledge base holds ------------------------------------------

@dataclass(frozen=True)
class Case:
    """A question to ask, over these paragraph files only (``None``: the whole set's knowledge base)."""

    question: EvalQuestion
    files: tuple[str, ...] | None
    answerable: bool = True


def _holds_gold(text: str, q: EvalQuestion) -> bool:
    return any(contains_answer(text, g) for g in q.answers)


def full_cases(questions: Iterable[EvalQuestion], unanswerable: Iterable[EvalQuestion] = ()) -> list[Case]:
    """Every question over the knowledge base of the whole set (the set's own unanswerable qas too)."""
    return [Case(q, None) for q in questions] + [Case(q, None, answerable=False) for q in unanswerable]


def noise_cases(data: EvalSet, questions: Sequence[EvalQuestion], n: int, *, seed: int = 0) -> list[Case]:
    """Each question over its gold paragraph(s) plus ``n`` distractors drawn from OTHER articles (none
    holding a gold text). The draw is seeded per question id, so ``--limit`` does not change it."""
    index = {name: i for i, name in enumerate(data.names)}
    cases = []
    for q in questions:
        gold = [index[d] for d in q.gold_docs]
        articles = {data.articles[i] for i in gold}
        pool = [i for i, a in enumerate(data.articles)
                if a not in articles and not _holds_gold(data.paragraphs[i], q)]
        rng = random.Random(f"{seed}:{q.qid or q.text}")
        picked = rng.sample(pool, min(n, len(pool)))
        files = [data.names[i] for i in gold] + [data.names[i] for i in picked]
        cases.append(Case(q, tuple(rng.sample(files, len(files)))))  # gold not always first
    return cases


NearestFn = Callable[[str, int], list[str]]  # (question, k) -> paragraph file names, nearest first


def unanswerable_cases(data: EvalSet, questions: Sequence[EvalQuestion], *, related: int = 4,
                       nearest: NearestFn | None = None) -> tuple[list[Case], dict[str, int]]:
    """Each question without its gold paragraph(s): the other paragraphs of the same article, minus any
    that holds a gold text. An article of one paragraph (all of CMRC 2018) has none; then the
    ``related`` paragraphs nearest to the question (``nearest``, e.g. dense search over the whole set)
    from other articles stand in. Questions left with nothing are skipped and counted."""
    index = {name: i for i, name in enumerate(data.names)}
    cases, counts = [], {"same_article": 0, "nearest": 0, "skipped": 0}
    for q in questions:
        gold = {index[d] for d in q.gold_docs}
        articles = {data.articles[i] for i in gold}
        keep = [i for i, a in enumerate(data.articles)
                if a in articles and i not in gold and not _holds_gold(data.paragraphs[i], q)]
        how = "same_article"
        if not keep and nearest is not None:
            how = "nearest"
            for name in nearest(q.text, related * 4 + len(gold)):
                i = index.get(name)
                if i is not None and i not in gold and i not in keep and not _holds_gold(data.paragraphs[i], q):
                    keep.append(i)
                if len(keep) >= related:
                    break
        if not keep:
            counts["skipped"] += 1
            continue
        counts[how] += 1
        cases.append(Case(q, tuple(data.names[i] for i in keep), answerable=False))
    return cases, counts


# -- asking -------------------------------------------------------------------------------------------

AskFn = Callable[[Case], Any]  # returns an AnswerStream (iterable of pieces, ``.answer`` once drained)


def run_cases(cases: Sequence[Case], ask: AskFn, *, progress: Callable[[int, int], None] | None = None,
              on_record: Callable[[AnswerRecord], None] | None = None,
              done: Mapping[str, AnswerRecord] | None = None) -> list[AnswerRecord]:
    """Ask every case, timing the first streamed piece and the whole answer, and score it. A case whose
    question id is in ``done`` (an interrupted run's records) is not asked again: its record is reused."""
    messages = not_found_messages()
    records = []
    for i, case in enumerate(cases):
        if done and case.question.qid in done:
            records.append(done[case.question.qid])
            continue
        start = time.perf_counter()
        stream = ask(case)
        first = None
        for piece in stream:
            if first is None and piece:
                first = time.perf_counter() - start
        total = time.perf_counter() - start
        record = score_answer(case.question, stream.answer, ttft=first if first is not None else total,
                              total=total, answerable=case.answerable, messages=messages)
        records.append(record)
        if on_record:
            on_record(record)
        if progress:
            progress(i + 1, len(cases))
    return records


def records_json(records: Sequence[AnswerRecord]) -> list[dict[str, Any]]:
    return [asdict(r) for r in records]
