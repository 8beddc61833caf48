"""``kb ask`` (one question) and ``kb chat`` (multi-turn): streamed answers with cited sources."""

from __future__ import annotations

import argparse
import sys

from ..generators.base import ChatMessage
from ..types import Answer
from .common import add_kb_option, print_json, settings_from, top_k


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("ask", help="answer one question from a knowledge base, citing sources")
    p.add_argument("question")
    add_kb_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of streaming")
    p.add_argument("--top-k", type=top_k, help="sources to retrieve (KB_TOP_K)")
    p.add_argument("--adapter", metavar="DIR",
                   help="a fine-tuned adapter directory from `kb finetune` (KB_ADAPTER; transformers backend)")
    p.set_defaults(func=run_ask)

    c = sub.add_parser(
        "chat",
        help="interactive multi-turn chat ('clear' empties the history, 'stop' or Ctrl-D leaves)",
    )
    add_kb_option(c)
    c.set_defaults(func=run_chat)


def _assistant(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from ..app import make_assistant, open_kb

    settings = settings_from(args)
    if getattr(args, "top_k", None):
        settings.top_k = args.top_k
    if getattr(args, "adapter", None):
        settings.model = settings.model.updated(adapter=args.adapter)
    kb = open_kb(settings, args.kb, create=False)
    return make_assistant(settings, kb)


def print_sources(answer: Answer) -> None:
    """The cited sources under a streamed answer, then every sentence no source supports, marked;
    for a refusal over related passages, those passages as "related, but not an answer"."""
    out = sys.stdout
    if not answer.found and answer.sources:
        print("related, but not an answer:", file=out)
        for n, s in enumerate(answer.sources, 1):
            print(f"  [{n}] {s.where}  (relevance {s.score:.2f})  {' '.join(s.text.split())[:120]}", file=out)
        return
    if not answer.found or not answer.sources:
        return
    unsupported = [c for c in answer.claims if not c.supported]
    if answer.claims:
        print(f"checked: {len(answer.claims) - len(unsupported)} of {len(answer.claims)} sentences supported by "
              "the sources" + (" (cited below)" if len(unsupported) < len(answer.claims) else ""), file=out)
    for c in unsupported:
        print(f"  ⚠ not supported by the sources: {' '.join(c.text.split())}", file=out)
    cited = {c.number for c in answer.citations}
    if not cited:
        heading = "sources (none supports the answer; shown for checking):"
    elif any(c.inferred for c in answer.citations):
        heading = "sources (matched to the answer's sentences):"
    else:
        heading = "sources:"
    print(heading, file=out)
    for n, s in enumerate(answer.sources, 1):
        if cited and n not in cited:
            continue
        snippet = " ".join(s.text.split())[:120]
        print(f"  [{n}] {s.where}  (relevance {s.score:.2f})  {snippet}", file=out)


def run_ask(args: argparse.Namespace) -> int:
    assistant = _assistant(args)
    stream = assistant.ask(args.question)
    if args.json:
        print_json(stream.result().to_dict())
        return 0
    for piece in stream:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    print_sources(stream.result())
    return 0


def run_chat(args: argparse.Namespace) -> int:
    assistant = _assistant(args)
    history: list[ChatMessage] = []
    print(f"chatting with knowledge base {assistant.kb.name!r}: 'clear' empties the history, "
          "'stop' or Ctrl-D leaves", file=sys.stderr)
    while True:
        try:
            question = input("> ").strip()
        except EOFError:
            print(file=sys.stderr)
            return 0
        if not question:
            continue
        if question.lower() in ("stop", "exit", "quit"):
            return 0
        if question.lower() == "clear":
            history.clear()
            print("(history cleared)", file=sys.stderr)
            continue
        stream = assistant.ask(question, history)
        for piece in stream:
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
        answer = stream.result()
        print_sources(answer)
        history += [ChatMessage("user", question), ChatMessage("assistant", answer.text)]
