"""Issue 17 figures: answer quality as users feel it, for named pipelines, on several sets, in one table.

Each pipeline is a dict of settings overrides over the current settings (bundled embedder and model at
a 2,048-token window unless told otherwise); adding one is a one-line entry in PIPELINES. Every set is
run three ways: the whole set as the knowledge base ("full"), each question over its gold paragraph
plus 4 distractors from other articles ("noise 4"), and each question without its gold paragraph
("unanswerable": honest rejection). Scored by kb_assistant.answer_eval, as `kb eval --generate`.

    python bench/bench_answers.py --pipelines baseline --sets cmrc,drcd,english,crosslingual --limit 30
    python bench/bench_answers.py --runs full --sets english --limit 10 --json out.json

The whole-set knowledge bases are kept under --workdir (default /tmp/kb-bench-answers), so a re-run
embeds nothing; per-question knowledge bases reuse those vectors.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kb_assistant.cli.evaluate_answers import answer_table  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
if not SHARED.exists():
    SHARED = Path("/work/shared/data")
DATA = ROOT / "tests" / "data"

# name -> settings overrides. Today's pipeline is "baseline"; a new one is one more line here.
PIPELINES: dict[str, dict[str, Any]] = {
    "baseline": {},
}

# name -> (SQuAD file, paragraphs indexed (None: all), file of extra unanswerable qas over the same paragraphs)
SETS: dict[str, tuple[Path, int | None, Path | None]] = {
    "cmrc": (SHARED / "cmrc2018_trial.json", None, None),
    "drcd": (SHARED / "drcd_dev.json", 300, None),
    "english": (DATA / "english_squad.json", None, DATA / "english_unanswerable.json"),
    "crosslingual": (DATA / "crosslingual_cmrc.json", None, None),
    "zh-en": (DATA / "crosslingual_zh_en.json", None, None),
}
RUNS = ("full", "noise", "unanswerable")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipelines", default="baseline", help=f"comma-separated, of {sorted(PIPELINES)}")
    parser.add_argument("--sets", default="cmrc,drcd,english,crosslingual", help=f"of {sorted(SETS)}")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"of {RUNS}")
    parser.add_argument("--limit", type=int, default=30, help="first N answerable questions per set")
    parser.add_argument("--noise", type=int, default=4, help="distractors per question in the noise run")
    parser.add_argument("--window", type=int, default=2048, help="context window (prompt + answer)")
    parser.add_argument("--drcd-paragraphs", type=int, default=SETS["drcd"][1],
                        help="DRCD paragraphs indexed (the first N questions lie in the first few)")
    parser.add_argument("--workdir", default="/tmp/kb-bench-answers")
    parser.add_argument("--json", metavar="FILE", help="also write summaries and per-answer records here")
    args = parser.parse_args()

    from kb_assistant.app import load_generator
    from kb_assistant.embedders import make_embedder
    from kb_assistant.eval_runner import AnswerEvaluation, evaluate_answers
    from kb_assistant.evaluation import load_squad_set
    from kb_assistant.settings import load_settings

    names = [p.strip() for p in args.pipelines.split(",") if p.strip()]
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    for value, known, what in ((names, PIPELINES, "pipeline"), (sets, SETS, "set"), (runs, RUNS, "run")):
        unknown = [v for v in value if v not in known]
        if unknown:
            parser.error(f"unknown {what} {', '.join(unknown)}: choose from {', '.join(known)}")
    base = load_settings()
    embedder = make_embedder(base.embedder)
    rows: list[tuple[str, dict[str, Any]]] = []
    dump: list[dict[str, Any]] = []
    for set_name in sets:
        path, paragraphs, extra = SETS[set_name]
        if set_name == "drcd":
            paragraphs = args.drcd_paragraphs
        if not path.exists():
            print(f"skipping {set_name}: {path} not found", file=sys.stderr)
            continue
        data = load_squad_set(path, limit_paragraphs=paragraphs)
        questions = data.questions[: args.limit]
        unanswered = list(data.unanswerable)
        if extra is not None:
            unanswered += load_squad_set(extra).unanswerable
        start = time.perf_counter()
        first = load_generator(base.model_copy(update={"n_ctx": max(base.n_ctx, args.window)}))
        with AnswerEvaluation(base, data, Path(args.workdir) / set_name, embedder, first) as ev:
            print(f"{set_name}: {len(data.paragraphs)} paragraphs indexed in {time.perf_counter() - start:.0f}s "
                  f"({ev.embedder.computed} passages embedded), {len(questions)} questions", file=sys.stderr)
            for name in names:
                overrides = PIPELINES[name]
                cfg = base.model_copy(update={**overrides, "n_ctx": max(base.n_ctx, args.window)})
                ev.generator = load_generator(cfg)
                for run in runs:
                    kw: dict[str, Any] = {"noise": args.noise} if run == "noise" else {}
                    if run == "unanswerable":
                        kw = {"unanswerable": True}
                    t0 = time.perf_counter()
                    summary, records = evaluate_answers(
                        ev, questions, args.window, overrides=overrides,
                        unanswered=unanswered[: args.limit] if run == "full" else (), **kw)
                    label = f"{name} | {set_name} | {run if run != 'noise' else f'noise {args.noise}'}"
                    summary["wall_s"] = round(time.perf_counter() - t0, 1)
                    rows.append((label, summary))
                    dump.append({"pipeline": name, "set": set_name, "run": run, "summary": summary,
                                 "records": [vars(r) for r in records]})
                    print(f"{label}: {summary['wall_s']}s", file=sys.stderr)
                    print(answer_table(rows[-1:]), file=sys.stderr)
    print(f"\nanswers at a {args.window}-token window, first {args.limit} questions per set "
          f"(gold = answer contains a gold text; TTFT/total = mean/p50 seconds)")
    print(answer_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(dump, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
