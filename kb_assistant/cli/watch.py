"""``kb watch PATH... --kb NAME``: keep a knowledge base in step with folders until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

from ..errors import KBError
from ..types import IndexReport
from .common import add_kb_option, add_store_options, settings_from


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "watch",
        help="keep a knowledge base in step with folders: changes are indexed as files are saved",
        description="Index the folders now (as `kb index --prune` would), then watch them: created, edited, "
        "moved and deleted files are applied incrementally a moment after they settle (a file still being "
        "written waits until it stops changing), one log line per change. Editors' temporary and lock files "
        "(~$x, .swp, .tmp, .#x, x~, .DS_Store) and hidden files are ignored. Ctrl-C stops.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="folders to watch (recursively)")
    add_kb_option(p)
    p.add_argument("--debounce", type=float, default=1.0, metavar="SECONDS",
                   help="quiet time before changes are applied (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar for the first pass")
    add_store_options(p)
    p.set_defaults(func=run_watch)


def _log(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


def run_watch(args: argparse.Namespace) -> int:
    from ..app import open_kb
    from ..kb.watch import FolderWatcher
    from .indexing import _progress_bar

    for raw in args.paths:
        if not Path(raw).expanduser().is_dir():
            raise KBError(f"{raw} is not a folder: `kb watch` watches folders (use `kb index` for single files)")
    settings = settings_from(args)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # a service manager's stop is as clean as Ctrl-C
    with open_kb(settings, args.kb) as kb:
        watcher = FolderWatcher(kb, args.paths, debounce=args.debounce, log=_log)
        bar, progress = _progress_bar(argparse.Namespace(quiet=args.quiet, json=False))

        def ready(report: IndexReport) -> None:
            bar.close()
            _log(f"{kb.name}: {report.summary()}; watching {', '.join(map(str, watcher.roots))} (Ctrl-C stops)")

        try:
            watcher.run(stop, progress=progress, ready=ready)
        except KeyboardInterrupt:
            pass
        finally:
            bar.close()
    print("stopped watching", file=sys.stderr)
    return 0
