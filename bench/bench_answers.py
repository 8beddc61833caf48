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

Baseline, today's pipeline (December; bundled e5-small + Qwen2.5-0.5B Q4, 2 shared CPU cores, 2,048-token
window, default settings: hybrid, top_k 5, min_relevance 0.2, temperature 0.1), --limit 30. Whole run
31 min, 12 of them indexing CMRC (256 paragraphs) and DRCD (300) once; an answer over Chinese sources
takes 9-10 s on average (median 5-6 s), a "not found" about 0.1 s. TTFT is over the answers the model
wrote, total time over all; "unans"/"rej": unanswerable questions and the share answered "not found"
or refused.

    run                        q  gold    F1   cov  prec uncit unsup    nf unans   rej      TTFT      total prompt
    english full              30 0.500 0.247 0.933 1.000 0.000   n/a 0.500    12 0.750 1.45/1.55  1.03/0.09    106
    english noise4            30 0.500 0.250 0.933 1.000 0.000   n/a 0.500     0     - 1.51/1.65  1.39/0.98    110
    english unanswerable       0     -     -     -     -     -   n/a     -    30 0.933 1.05/1.05  0.34/0.24     70
    crosslingual full         30 0.000 0.000     -     - 0.000   n/a 1.000     0     -         -  0.05/0.05     70
    crosslingual noise4       30 0.000 0.000     -     - 0.000   n/a 1.000     0     -         -  0.30/0.26     70
    crosslingual unanswerable  0     -     -     -     -     -   n/a     -    30 1.000         -  0.16/0.14     70
    zh-en full                12 0.000 0.000     -     - 0.000   n/a 1.000     0     -         -  0.04/0.04     67
    zh-en noise4              12 0.000 0.000     -     - 0.000   n/a 1.000     0     -         -  0.22/0.22     67
    zh-en unanswerable         0     -     -     -     -     -   n/a     -    12 1.000         -  0.22/0.21     67
    cmrc full                 30 0.533 0.426 1.000 0.964 0.000   n/a 0.067     0     - 6.76/2.60  9.24/5.19    616
    cmrc noise4               30 0.567 0.424 1.000 1.000 0.000   n/a 0.067     0     - 2.09/0.56  3.99/2.19    456
    cmrc unanswerable          0     -     -     -     -     -   n/a     -    30 0.700 9.47/3.12  4.16/0.14    256
    drcd full                 30 0.400 0.140 0.833 0.857 0.200   n/a 0.100     0     - 5.62/5.29 10.27/5.72    462
    drcd noise4               30 0.467 0.168 0.857 1.000 0.133   n/a 0.200     0     - 2.94/0.86  3.77/2.16    309
    drcd unanswerable          0     -     -     -     -     -   n/a     -    30 0.700 6.45/5.62  3.08/0.27    224

Read: English and cross-lingual questions are mostly turned away by the relevance gate (false "not found"
0.50 English, 1.00 English-over-Chinese and Chinese-over-English, although retrieval alone ranks the gold
paragraph in the top 3 for 0.97-1.00 of them: `kb eval FILE` without --generate), so their rejection
rates say little. CMRC has one paragraph per article: its unanswerable run uses the 4 paragraphs nearest
to the question instead (DRCD: the rest of the article, 29 of 30).
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

from kb_assistant.cli.evaluate_answers import LEGEND, answer_table  # noqa: E402

# the shared CMRC/DRCD files: in the checkout's shared/ or beside it (worktrees sit one level deeper)
SHARED = next((p / "shared" / "data" for p in (ROOT, ROOT.parent, ROOT.parent.parent)
               if (p / "shared" / "data").is_dir()), ROOT.parent / "shared" / "data")
DATA = ROOT / "tests" / "data"

# name -> settings overrides. "baseline" is the pipeline before issue 17 (min-max fusion gated on the
# Chinese dense band, whole chunks, no answerability check, sentences attributed by character overlap);
# "new" is today's defaults. A new pipeline is one more line here.
PIPELINES: dict[str, dict[str, Any]] = {
    "baseline": {"fusion": "minmax", "evidence": "chunks", "check_answerable": False, "check_support": False},
    "new": {},
}

# name -> (SQuAD file, paragraphs indexed (None: all), file of extra unanswerable qas over the same paragraphs,
# spread: --limit takes questions evenly spaced over our own sets, whose files group them by topic; the first
# N for CMRC and DRCD, as everyone reports them)
SETS: dict[str, tuple[Path, int | None, Path | None, bool]] = {
    "cmrc": (SHARED / "cmrc2018_trial.json", None, None, False),
    "drcd": (SHARED / "drcd_dev.json", 300, None, False),
    "english": (DATA / "english_squad.json", None, DATA / "english_unanswerable.json", True),
    "crosslingual": (DATA / "crosslingual_cmrc.json", None, None, True),
    "zh-en": (DATA / "crosslingual_zh_en.json", None, None, True),
}
RUNS = ("full", "noise", "unanswerable")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipelines", default="baseline", help=f"comma-separated, of {sorted(PIPELINES)}")
    parser.add_argument("--sets", default="cmrc,drcd,english,crosslingual,zh-en", help=f"of {sorted(SETS)}")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"of {RUNS}")
    parser.add_argument("--limit", type=int, default=30,
                        help="N answerable questions per set (the full run adds the set's own unanswerable ones)")
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
        path, paragraphs, extra, spread = SETS[set_name]
        if set_name == "drcd":
            paragraphs = args.drcd_paragraphs
        if not path.exists():
            print(f"skipping {set_name}: {path} not found", file=sys.stderr)
            continue
        data = load_squad_set(path, limit_paragraphs=paragraphs)
        questions = data.questions[: args.limit]
        if spread and len(data.questions) > args.limit:
            step = len(data.questions) / args.limit
            questions = [data.questions[int(i * step)] for i in range(args.limit)]
        unanswered = list(data.unanswerable)
        if extra is not None:
            unanswered += load_squad_set(extra).unanswerable
        start = time.perf_counter()
        model = base.model.updated(n_ctx=max(base.model.n_ctx, args.window))
        first = load_generator(base.model_copy(update={"model": model}))
        with AnswerEvaluation(base, data, Path(args.workdir) / set_name, embedder, first) as ev:
            print(f"{set_name}: {len(data.paragraphs)} paragraphs indexed in {time.perf_counter() - start:.0f}s "
                  f"({ev.embedder.computed} passages embedded), {len(questions)} questions", file=sys.stderr)
            for name in names:
                overrides = PIPELINES[name]
                cfg = base.model_copy(update={**overrides, "model": model})
                ev.generator = load_generator(cfg)
                for run in runs:
                    kw: dict[str, Any] = {"noise": args.noise} if run == "noise" else {}
                    if run == "unanswerable":
                        kw = {"unanswerable": True}
                    t0 = time.perf_counter()
                    summary, records = evaluate_answers(
                        ev, questions, args.window, overrides=overrides,
                        unanswered=unanswered if run == "full" else (), **kw)
                    label = f"{name} {set_name} {run if run != 'noise' else f'noise{args.noise}'}"
                    summary["wall_s"] = round(time.perf_counter() - t0, 1)
                    rows.append((label, summary))
                    dump.append({"pipeline": name, "set": set_name, "run": run, "summary": summary,
                                 "records": [vars(r) for r in records]})
                    print(f"{label}: {summary['wall_s']}s", file=sys.stderr)
                    print(answer_table(rows[-1:]), file=sys.stderr)
    print(f"\nanswers at a {args.window}-token window, {args.limit} questions per set")
    print(answer_table(rows))
    print(LEGEND)
    if args.json:
        Path(args.json).write_text(json.dumps(dump, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
