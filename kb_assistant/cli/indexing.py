"""``kb index``, ``kb remove`` and ``kb rebuild``: change what a knowledge base holds."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..errors import KBError
from .common import add_kb_option, add_store_options, one_line, print_json, settings_from


def _add_common(p: argparse.ArgumentParser) -> None:
    add_kb_option(p)
    p.add_argument("--json", action="store_true", help="print the per-file report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--wait", type=float, default=10.0, metavar="SECONDS",
                   help="how long to wait for another process writing the same knowledge base (default 10)")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "index",
        help="index files and folders (incremental: unchanged files skipped, moved ones re-pointed)",
        description="Parse, split, embed and store documents. Supported: .txt .md .pdf .docx .html .csv "
        "and more (see `kb list --formats`). Unchanged files (same content hash) are skipped, edited ones "
        "replaced, renamed or moved ones re-pointed without embedding; files gone from an indexed folder "
        "are listed as missing (removed with --prune). Files that fail are reported by name; the rest "
        "are indexed. Chunk texts embedded before are taken from the knowledge base's embedding cache.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    p.add_argument("--prune", action="store_true", help="remove documents whose files are gone from the folders")
    _add_common(p)
    add_store_options(p)
    p.set_defaults(func=run_index)

    r = sub.add_parser("remove", help="delete documents (files, or all under a folder) from a knowledge base")
    r.add_argument("paths", nargs="+", metavar="FILE", help="indexed files or folders (the files may be gone)")
    r.add_argument("--yes", "-y", action="store_true",
                   help="remove several documents without asking (needed when not run interactively)")
    _add_common(r)
    r.set_defaults(func=run_remove)

    b = sub.add_parser(
        "rebuild",
        help="re-read and re-split every document (e.g. after changing chunk settings)",
        description="Re-read every recorded source file and split it with the current settings "
        "(KB_CHUNK_SIZE, KB_CHUNK_OVERLAP); chunk texts seen before are not embedded again. Each file is "
        "swapped in one step; files that are gone are listed (removed with --prune).",
    )
    b.add_argument("--prune", action="store_true", help="remove documents whose files are gone")
    _add_common(b)
    b.set_defaults(func=run_rebuild)


def _progress_bar(args: argparse.Namespace) -> Any:
    from tqdm import tqdm

    bar = tqdm(total=0, unit="file", disable=args.quiet or args.json, file=sys.stderr, dynamic_ncols=True)

    def progress(done: int, total: int, path: str) -> None:
        bar.total = total
        bar.n = done
        bar.set_postfix_str(path[-50:] if path else "", refresh=True)

    return bar, progress


def _finish(args: argparse.Namespace, name: str, report: Any) -> int:
    if args.json:
        print_json({"outcomes": [vars(o) for o in report.outcomes], "counts": report.counts(),
                    "embedded": report.embedded, "cached": report.cached, "stale": report.stale,
                    "notes": report.notes})
    else:
        for o in report.outcomes:
            if o.status in ("failed", "skipped", "missing"):
                print(f"{o.status}: {one_line(o.path)}: {one_line(o.reason)}", file=sys.stderr)
            elif o.status == "moved":
                print(f"moved: {one_line(o.reason)} -> {one_line(o.path)}", file=sys.stderr)
        for note in report.notes:
            print(f"note: {note}", file=sys.stderr)
        print(f"{name}: {report.summary()}")
    return 1 if report.failed else 0


def run_index(args: argparse.Namespace) -> int:
    from ..app import open_kb

    settings = settings_from(args)
    if not any(os.path.lexists(os.path.expanduser(p)) for p in args.paths):  # a typo must not create a kb
        raise KBError(f"{one_line(args.paths[0])}: no such file or folder; check the path (nothing was indexed)")
    with open_kb(settings, args.kb) as kb:
        bar, progress = _progress_bar(args)
        try:
            report = kb.index_paths(args.paths, progress=progress, prune=args.prune, wait=args.wait)
        finally:
            bar.close()
    return _finish(args, kb.name, report)


def run_remove(args: argparse.Namespace) -> int:
    from ..app import open_kb

    settings = settings_from(args)
    with open_kb(settings, args.kb, create=False) as kb:
        doomed = kb.documents_matching(args.paths)
        if len(doomed) > 1 and not args.yes:
            if not sys.stdin.isatty():
                raise KBError(f"{', '.join(args.paths)} matches {len(doomed)} documents of {kb.name!r}: "
                              "pass --yes to remove them all")
            answer = input(f"remove {len(doomed)} documents from {kb.name!r}? [y/N] ").strip().lower()
            if answer not in ("y", "yes"):
                print("nothing removed")
                return 1
        report = kb.remove(args.paths, wait=args.wait)
    return _finish(args, kb.name, report)


def run_rebuild(args: argparse.Namespace) -> int:
    from ..app import open_kb

    settings = settings_from(args)
    with open_kb(settings, args.kb, create=False) as kb:
        bar, progress = _progress_bar(args)
        try:
            report = kb.rebuild(progress=progress, prune=args.prune, wait=args.wait)
        finally:
            bar.close()
    return _finish(args, kb.name, report)
