"""``kb eval --generate``: answers scored as users feel them, printed as one table (or JSON)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .common import print_json

COLUMNS = (  # (header, summary key, format)
    ("q", "questions", "{}"),
    ("gold", "contains_gold", "{:.3f}"),
    ("own", "gold_in_model_words", "{:.3f}"),
    ("F1", "f1", "{:.3f}"),
    ("cov", "citation_coverage", "{:.3f}"),
    ("prec", "citation_precision", "{:.3f}"),
    ("uncit", "uncited_answers", "{:.3f}"),
    ("unsup", "unsupported_rate", "{:.3f}"),
    ("nf", "not_found_rate", "{:.3f}"),
    ("unans", "unanswerable", "{}"),
    ("rej", "honest_rejection", "{:.3f}"),
    ("TTFT", "ttft_s", "{mean:.2f}/{p50:.2f}"),
    ("total", "total_s", "{mean:.2f}/{p50:.2f}"),
    ("prompt", "mean_prompt_tokens", "{:.0f}"),
)
LEGEND = ("q: answerable questions; gold: answer contains a gold text; own: the same in the model's own "
          "words, before a quoted source sentence; F1: character/word F1; cov: citation "
          "coverage; prec: citation precision; uncit: answers without a citation; unsup: unsupported "
          "sentences; nf: false 'not found'; unans: unanswerable questions; rej: their honest rejection; "
          "TTFT/total: seconds, mean/median; prompt: mean prompt tokens")


def cell(summary: dict[str, Any], key: str, fmt: str) -> str:
    value = summary.get(key)
    if value is None or value == "n/a":
        return "n/a" if value == "n/a" else "-"
    if isinstance(value, dict):
        return fmt.format(**value) if value.get("mean") is not None else "-"
    return fmt.format(value)


def answer_table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    """One line per (label, summary): the metrics of ``answer_eval.summarise``; "-" where not measured."""
    cells = [[label, *(cell(s, k, f) for _, k, f in COLUMNS)] for label, s in rows]
    head = ["run", *(h for h, _, _ in COLUMNS)]
    widths = [max(len(r[i]) for r in [head, *cells]) for i in range(len(head))]
    lines = [" ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [head, *cells]]
    return "\n".join(lines)


def run_answers(args: argparse.Namespace, settings: Any, data: Any, workdir: Path, quiet: bool) -> int:
    from tqdm import tqdm

    from ..answer_eval import records_json
    from ..app import load_generator
    from ..embedders import make_embedder
    from ..eval_runner import AnswerEvaluation, evaluate_answers

    windows = args.windows or [2048]
    questions = data.questions[: args.limit] if args.limit else data.questions
    unanswered = data.unanswerable[: args.limit] if args.limit else data.unanswerable
    model = settings.model.updated(n_ctx=max(settings.model.n_ctx, *windows))
    generator = load_generator(settings.model_copy(update={"model": model}))
    bar = tqdm(total=len(data.paragraphs), desc="indexing", unit="file", disable=quiet, file=sys.stderr)
    results: dict[str, Any] = {"data": str(args.data), "paragraphs": len(data.paragraphs), "answers": []}
    records_out = open(args.records, "w", encoding="utf-8") if args.records else None  # noqa: SIM115
    try:
        with AnswerEvaluation(settings, data, workdir, make_embedder(settings.embedder), generator,
                              progress=lambda d, t: bar.update(d - bar.n)) as ev:
            bar.close()
            if ev.failed:
                print(f"warning: {ev.failed} paragraphs failed to index", file=sys.stderr)
            for window in windows:
                with tqdm(total=len(questions), desc=f"answers @{window}", unit="q", disable=quiet,
                          file=sys.stderr) as qbar:

                    def advance(done: int, total: int, qbar: Any = qbar) -> None:
                        qbar.update(done - qbar.n)

                    summary, records = evaluate_answers(
                        ev, questions, window, noise=args.noise, unanswerable=args.unanswerable, seed=args.seed,
                        unanswered=unanswered, progress=advance)
                results["answers"].append(summary)
                if records_out:
                    for row in records_json(records):
                        records_out.write(json.dumps({"window": window, **row}, ensure_ascii=False) + "\n")
    finally:
        if records_out:
            records_out.close()
    if args.json:
        print_json(results)
    else:
        print(f"{Path(results['data']).name}: {results['paragraphs']} paragraphs")
        print(answer_table([(f"{s['kind']} @{s['window']}", s) for s in results["answers"]]))
        print(LEGEND)
    return 0
