"""``kb migrate``: copy a knowledge base to a Milvus store (Lite file or server) and verify it."""

from __future__ import annotations

import argparse
import sys

from .common import add_kb_option, print_json, settings_from


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "migrate",
        help="copy a knowledge base to Milvus (no re-embedding) and verify it",
        description="Copy the vectors, payloads and metadata of a knowledge base to a Milvus store: a local "
        "file ending in .db (Milvus Lite) or http(s)://host:19530 (a Milvus server). Counts and sample "
        "searches are compared afterwards; on success the knowledge base switches to the new store "
        "(the old one stays on disk as a backup) unless --copy-only is given.",
    )
    add_kb_option(p)
    p.add_argument("--to", required=True, metavar="URI", help="e.g. ~/kb.db or http://milvus:19530")
    p.add_argument("--token", help="Milvus token, user:password or API key (KB_STORE_TOKEN)")
    p.add_argument("--collection", help="collection name (default: kb_<name>)")
    p.add_argument("--copy-only", action="store_true", help="copy and verify, but keep using the old store")
    p.add_argument("--sample", type=int, default=20, help="stored vectors used as verification queries")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..kb.migrate import migrate_kb

    settings = settings_from(args)
    name = args.kb or settings.default_kb
    bar = tqdm(total=0, unit="rec", disable=args.quiet or args.json, file=sys.stderr, dynamic_ncols=True)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        report = migrate_kb(
            settings, name, args.to, token=args.token or settings.store_token, collection=args.collection,
            switch=not args.copy_only, sample=args.sample, progress=progress,
        )
    finally:
        bar.close()
    if args.json:
        print_json({**vars(report), "ok": report.ok})
    else:
        print(report.summary())
    return 0
