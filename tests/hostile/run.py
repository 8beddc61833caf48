"""Run ``kb`` in a subprocess and measure its peak memory, as a hostile-input test needs."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A forked child's peak RSS starts at its parent's RSS at fork (Linux keeps the pre-exec high-water mark),
# so measuring a child of a pytest process that has grown to 1 GB reports 1 GB. A small launcher forks
# the command instead and reports that grandchild's peak, from wait4 on it alone.
# It also caps the command's address space, so a broken limit fails the test instead of swapping the
# machine to death (without the unpacked-size check the zip bomb grew past 20 GB).
ADDRESS_SPACE_CAP = 4 * 1024**3
_LAUNCHER = f"""
import os, resource, subprocess, sys
resource.setrlimit(resource.RLIMIT_AS, ({ADDRESS_SPACE_CAP}, {ADDRESS_SPACE_CAP}))
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
proc.returncode = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as f:
    f.write(f"{{proc.returncode}} {{usage.ru_maxrss}}")
"""


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str
    peak_rss: int  # bytes, the command's own high-water mark


def run_kb(args: list[str], tmp: Path, **env: str) -> Run:
    """``python -m kb_assistant ARGS`` with the test's environment plus ``env``, and its peak RSS."""
    child_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    result = tmp / "kb.rusage"
    command = [sys.executable, "-c", _LAUNCHER, str(result), sys.executable, "-m", "kb_assistant", *args]
    done = subprocess.run(command, env=child_env, capture_output=True, stdin=subprocess.DEVNULL, cwd=ROOT,
                          check=False)
    code, maxrss_kb = map(int, result.read_text().split())
    return Run(code, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace"),
               maxrss_kb * 1024)  # Linux reports kilobytes
