"""``kb index``: add files and folders to a knowledge base."""

from __future__ import annotations

import argparse
import sys

from .common import add_kb_option, print_json, settings_from


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "index",
        help="index files and folders (recursive; unchanged files are skipped)",
        description="Parse, split, embed and store documents. Supported: .txt .md .pdf .docx .html .csv "
        "and more (see `kb list --formats`). Files that fail are reported by name; the rest are indexed.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    add_kb_option(p)
    p.add_argument("--json", action="store_true", help="print the per-file report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..app import open_kb

    settings = settings_from(args)
    with open_kb(settings, args.kb) as kb:
        bar = tqdm(total=0, unit="file", disable=args.quiet or args.json, file=sys.stderr, dynamic_ncols=True)

        def progress(done: int, total: int, path: str) -> None:
            bar.total = total
            bar.n = done
            bar.set_postfix_str(path[-40:] if path else "", refresh=True)

        report = kb.index_paths(args.paths, progress=progress)
        bar.close()
    if args.json:
        print_json([vars(o) for o in report.outcomes])
    else:
        for o in report.outcomes:
            if o.status in ("failed", "skipped"):
                print(f"{o.status}: {o.path}: {o.reason}", file=sys.stderr)
        print(f"{kb.name}: {report.summary()}")
    return 1 if report.failed else 0
