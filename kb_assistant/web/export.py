"""Conversations as Markdown with their citations, and answer feedback as files `kb eval` / `kb finetune` read."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from .records import Turn, quote_text
from .render import strength
from .store import Conversation, Feedback


def _md_line(text: str) -> str:
    """Document text inside a Markdown quote: one line, no raw HTML."""
    return " ".join(text.split()).replace("<", "&lt;").replace(">", "&gt;")


def conversation_markdown(conversation: Conversation, turns: Sequence[Turn]) -> str:
    """The whole conversation: each question, its answer, and the sources it cites with their passages."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(conversation.updated))
    out = [f"# {conversation.title}", "", f"Knowledge base: {conversation.kb} · last updated {when}", ""]
    for i, turn in enumerate(turns, 1):
        out += [f"## {i}. {_md_line(turn.question)}", ""]
        answer = turn.answer
        if answer is None:
            out += [f"_(no answer: {turn.error or turn.status})_", ""]
            continue
        text = answer.text
        for claim in turn.claims:
            if not claim.supported and claim.text in text:
                text = text.replace(claim.text, f"{claim.text} ⚠ *(not supported by the sources)*", 1)
        out += [text.strip(), ""]
        if turn.status == "stopped":
            out += ["_(stopped before the end)_", ""]
        if answer.found and answer.citations:
            out.append("Sources:")
            out.append("")
            for c in sorted(answer.citations, key=lambda c: c.number):
                s = c.source
                out.append(f"- [{c.number}] {s.label} ({s.source}) · relevance {s.score:.2f} ({strength(s.score)})")
                out.append(f"  > {_md_line(quote_text(c))}")
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def _context_and_spans(fb: Feedback) -> tuple[str, list[dict[str, Any]]]:
    """The cited passages joined as one context, and where each supporting sentence sits in it."""
    cited = sorted(fb.answer.citations, key=lambda c: c.number)
    passages = [c.source.text for c in cited] or [s.text for s in fb.answer.sources]
    context = "\n\n".join(dict.fromkeys(passages))
    spans: list[dict[str, Any]] = []
    for c in cited:
        quote = quote_text(c).strip()
        at = context.find(quote) if quote else -1
        if at >= 0 and quote not in [s["text"] for s in spans]:
            spans.append({"text": quote, "answer_start": at})
    return context, spans


def feedback_record(fb: Feedback) -> dict[str, Any]:
    """One JSONL record: ``question``/``answer`` (what `kb finetune` reads), SQuAD-style ``context`` and
    ``answers`` (the supporting sentences inside it), the rating and the sources."""
    context, spans = _context_and_spans(fb)
    return {
        "question": fb.answer.question,
        "answer": fb.answer.text,
        "rating": fb.rating,
        "kb": fb.kb,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(fb.created)),
        "context": context,
        "answers": spans,
        "unsupported": [c.text for c in fb.claims if not c.supported],
        "sources": [{"number": i, "file": s.source, "page": s.page, "score": round(s.score, 4), "text": s.text}
                    for i, s in enumerate(fb.answer.sources, 1)],
    }


def feedback_jsonl(rows: Sequence[Feedback]) -> str:
    return "".join(json.dumps(feedback_record(fb), ensure_ascii=False) + "\n" for fb in rows)


def feedback_squad(rows: Sequence[Feedback]) -> tuple[dict[str, Any], int]:
    """A SQuAD file for `kb eval`: helpful answers whose supporting sentence is in their context.

    Returns ``(data, skipped)``; an answer without a located supporting sentence has no gold span
    for `kb eval` to look for, so it is skipped and counted.
    """
    paragraphs, skipped = [], 0
    for fb in rows:
        if fb.rating != "helpful":
            continue
        context, spans = _context_and_spans(fb)
        if not spans:
            skipped += 1
            continue
        paragraphs.append({"context": context, "qas": [
            {"id": f"feedback-{fb.turn_id}", "question": fb.answer.question, "answers": spans}]})
    return {"version": "kb-feedback", "data": [{"title": "feedback", "paragraphs": paragraphs}]}, skipped
