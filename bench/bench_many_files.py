"""``kb index`` over a folder of 100,000 tiny files (issue 15's "a folder of 100,000 files"): files/s and
peak RSS, for the first pass (every file added) and a second pass (every file unchanged: hashed only),
against a baseline folder of 10,000 files in the same run, so the figures read per file and not per machine.

The CLI runs in a subprocess behind a small launcher that reports its own peak RSS (see tests/hostile/run.py).
The hash embedder keeps the figure about files, not about the embedder (bench_pipeline measures that).
Seconds are wall time of the whole command, its start-up (~0.5 s) included.

    python bench/bench_many_files.py [--files 100000] [--baseline 10000] [--per-folder 1000] [--embedder hash:256]

2026-12-01 (2 shared cores, under load): first pass 852 files/s at 10,000 and 821 at 100,000 (x0.96), peak RSS
109 MB and 591 MB (5.5 KB per extra file: FAISS rows, the catalogue, the per-file report); unchanged pass 4,605 and
6,178 files/s, peak RSS 94 MB and 364 MB.
Later that day, the code before and after the memory changes run back to back (load average 3.5-6.7): peak
RSS at 100,000 files 589 -> 436 MB for the first pass and 364 -> 290 MB for the unchanged one (at 10,000:
108 -> 98 and 94 -> 92 MB). The peak of both was a snapshot of the index held whole beside the index (as
bytes on load, twice over on save); now it is streamed. The walk also holds each path once, and an unchanged
run builds no hash -> sources map. What remains at 100,000 files: the FAISS index, loaded at open (~100 MB
at 256 dims; opening also checks and repairs it, so it stays eager), and ~1 KB of Python per file (its path,
its catalogue entry, its outcome in the report). files/s swung with the load (first pass 1,124 vs 998 files/s,
unchanged 8,255 vs 5,822).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.hostile.files import make_folder  # noqa: E402
from tests.hostile.run import run_kb  # noqa: E402


def index(folder: Path, kb: str, tmp: Path, env: dict[str, str]) -> tuple[float, int, str]:
    """Seconds, peak RSS (bytes) and the summary line of one ``kb index`` run."""
    start = time.perf_counter()
    run = run_kb(["index", str(folder), "--kb", kb, "--quiet"], tmp, **env)
    seconds = time.perf_counter() - start
    if run.code != 0:
        sys.exit(f"kb index failed ({run.code}):\n{run.err[-2000:]}")
    return seconds, run.peak_rss, run.out.strip().splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--baseline", type=int, default=10_000)
    ap.add_argument("--per-folder", type=int, default=1000)
    ap.add_argument("--embedder", default="hash:256")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        env = {"KB_DATA_DIR": str(tmp / "data"), "KB_CONFIG": str(tmp / "none.toml"), "KB_EMBEDDER": args.embedder}
        rows = []
        for n in (args.baseline, args.files):
            t0 = time.perf_counter()
            folder = make_folder(tmp / f"docs{n}", n, per_folder=args.per_folder)
            made = time.perf_counter() - t0
            first = index(folder, f"many{n}", tmp, env)
            again = index(folder, f"many{n}", tmp, env)
            rows.append((n, made, first, again))
            print(f"{n} files (written in {made:.0f} s):\n  {first[2]}\n  {again[2]}", flush=True)
    print(f"\n{'files':>8} {'first pass':>12} {'files/s':>8} {'peak RSS':>9} {'unchanged':>10} {'files/s':>8} "
          f"{'peak RSS':>9}")
    for n, _made, (s1, rss1, _), (s2, rss2, _) in rows:
        print(f"{n:>8} {s1:>10.1f} s {n / s1:>8.0f} {rss1 >> 20:>6} MB {s2:>8.1f} s {n / s2:>8.0f} {rss2 >> 20:>6} MB")
    (n0, _, (a0, r0, _), _), (n1, _, (a1, r1, _), _) = rows
    print(f"\n{n1} vs {n0} files: files/s x{(n1 / a1) / (n0 / a0):.2f}; peak RSS grows "
          f"{(r1 - r0) / (n1 - n0) / 1024:.1f} KB per extra file")


if __name__ == "__main__":
    main()
