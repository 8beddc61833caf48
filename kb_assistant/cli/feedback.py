"""``kb feedback export``: the web app's helpful / wrong answer ratings as training or evaluation data."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import KBError
from .common import settings_from


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("feedback", help="export the answer feedback given in the web app")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    e = actions.add_parser(
        "export", help="write the feedback as JSONL (kb finetune) or a SQuAD file (kb eval)",
        description="JSONL: one record per rated answer with question, answer, rating, sources and SQuAD-style "
        "context/answers; `kb finetune` reads its question/answer (use --rating helpful). SQuAD: the helpful "
        "answers, each with its cited passages as context and the supporting sentences as gold answers, for "
        "`kb eval`.")
    e.add_argument("--kb", metavar="NAME", help="only this knowledge base's feedback (default: all)")
    e.add_argument("--rating", choices=("helpful", "wrong", "all"), default="all")
    e.add_argument("--format", choices=("jsonl", "squad"), default="jsonl")
    e.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")
    e.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from ..web.export import feedback_jsonl, feedback_squad
    from ..web.store import DB_FILE, AppStore

    settings = settings_from(args)
    if not (Path(settings.data_dir) / DB_FILE).exists():
        raise KBError(f"no feedback yet in {settings.data_dir}: rate answers in the web app (👍 / 👎) first")
    rows = AppStore.for_settings(settings).feedback(kb=args.kb, rating=None if args.rating == "all" else args.rating)
    if args.format == "squad":
        data, skipped = feedback_squad(rows)
        text = json.dumps(data, ensure_ascii=False, indent=1) + "\n"
        if skipped:
            print(f"note: {skipped} helpful answer(s) without a located supporting sentence left out", file=sys.stderr)
    else:
        text = feedback_jsonl(rows)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"{len(rows)} rated answer(s) considered; written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
