"""``kb gc``: prune embedding caches of texts no document holds and compact the stores."""

from __future__ import annotations

import argparse

from .common import add_kb_option, settings_from


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "gc",
        help="prune the embedding cache of texts no document holds and compact the vector store",
        description="Edited and removed files leave their old chunk texts' vectors in the embedding cache; "
        "this drops them, shrinks the cache file and folds the FAISS store's change log into a snapshot. "
        "Nothing a document holds is lost (a removed text added back is embedded again). Runs by itself, "
        "without shrinking the file, after an indexing run removes a large share of the chunks.",
    )
    add_kb_option(p)
    p.add_argument("--all", action="store_true", help="every knowledge base")
    p.add_argument("--wait", type=float, default=10.0, metavar="SECONDS",
                   help="how long to wait for another process writing the knowledge base (default 10)")
    p.set_defaults(func=run_gc)


def run_gc(args: argparse.Namespace) -> int:
    from ..app import open_kb
    from ..kb import kb_names

    settings = settings_from(args)
    names = kb_names(settings) if args.all else [args.kb or settings.default_kb]
    for name in names:
        with open_kb(settings, name, create=False) as kb:
            print(kb.gc(wait=args.wait).summary())
    if not names:
        print("no knowledge bases yet")
    return 0
