"""``kb list`` (knowledge bases, documents, formats) and ``kb search`` (retrieval only)."""

from __future__ import annotations

import argparse

from .common import add_kb_option, one_line, print_json, settings_from, top_k


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("list", help="list knowledge bases, or the documents of one with --kb")
    add_kb_option(p)
    p.add_argument("--formats", action="store_true", help="list the file types that can be indexed")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_list)

    s = sub.add_parser("search", help="retrieve the chunks closest to a query (no model)")
    s.add_argument("query")
    add_kb_option(s)
    s.add_argument("--top-k", type=top_k, help="how many chunks (KB_TOP_K)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=run_search)


def run_list(args: argparse.Namespace) -> int:
    from ..app import open_kb
    from ..kb import kb_names

    settings = settings_from(args)
    if args.formats:
        from ingest import LOADERS

        for suffix, spec in sorted(LOADERS.items()):
            print(f"{suffix:8} {spec.description}")
        return 0
    if not args.kb:
        names = kb_names(settings)
        if args.json:
            print_json(names)
        elif not names:
            print("no knowledge bases yet: `kb index PATH --kb NAME` creates one")
        for name in [] if args.json else names:
            print(name)
        return 0
    with open_kb(settings, args.kb, create=False) as kb:
        docs = kb.documents()
        synced = kb.manifest.synced
    if args.json:
        print_json([vars(d) for d in docs])
        return 0
    print(f"{args.kb}: {len(docs)} documents, {sum(d.chunks for d in docs)} chunks"
          + (f", last synced {synced} by `kb watch`" if synced else ""))
    for d in docs:
        pages = f"{d.pages} pages, " if d.pages else ""
        stale = f"  STALE: {one_line(d.stale)}" if d.stale else ""
        print(f"  {one_line(d.source)}  ({pages}{d.chunks} chunks){stale}")
    return 0


def run_search(args: argparse.Namespace) -> int:
    from ..app import open_kb

    settings = settings_from(args)
    with open_kb(settings, args.kb, create=False) as kb:
        # the same retriever `kb ask` uses: mode, relevance threshold and reranker from the settings
        retriever = kb.retriever(settings)
        sources = retriever.search(args.query, args.top_k or settings.top_k)
    if args.json:
        print_json([{"rank": i, **s.to_dict()} for i, s in enumerate(sources, 1)])
        return 0
    if not sources:
        print(f"nothing found at relevance >= {settings.min_relevance} (is the knowledge base empty?)")
    for i, s in enumerate(sources, 1):
        print(f"[{i}] {one_line(s.where)}  relevance {s.score:.3f}\n    {' '.join(s.text.split())[:200]}")
    return 0
