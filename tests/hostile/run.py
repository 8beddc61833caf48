"""Run ``kb`` in a subprocess and measure its peak memory, as a hostile-input test needs."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str
    peak_rss: int  # bytes, the child's own high-water mark


def run_kb(args: list[str], tmp: Path, **env: str) -> Run:
    """``python -m kb_assistant ARGS`` with the test's environment plus ``env``. Peak RSS comes from
    ``wait4`` on this child alone (RUSAGE_CHILDREN would report the largest child of the whole session)."""
    child_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    out_path, err_path = tmp / "kb.out", tmp / "kb.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "kb_assistant", *args], env=child_env, stdout=out,
                                stderr=err, stdin=subprocess.DEVNULL, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    return Run(proc.returncode, out_path.read_text("utf-8", "replace"), err_path.read_text("utf-8", "replace"),
               usage.ru_maxrss * 1024)  # Linux reports kilobytes
