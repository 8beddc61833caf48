"""``kb kb create|list|delete``: manage named knowledge bases."""

from __future__ import annotations

import argparse
import sys

from ..errors import KBError
from .common import add_store_options, print_json, settings_from


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("kb", help="create, list or delete knowledge bases")
    kb_sub = p.add_subparsers(dest="kb_command", metavar="ACTION", required=True)

    c = kb_sub.add_parser("create", help="create an empty knowledge base with the current embedder and chunk settings")
    c.add_argument("name")
    add_store_options(c)
    c.set_defaults(func=run_create)

    ls = kb_sub.add_parser("list", help="knowledge bases with documents, chunks, embedder and creation time")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=run_list)

    d = kb_sub.add_parser("delete", help="delete a knowledge base and its files (asks first)")
    d.add_argument("name")
    d.add_argument("--yes", "-y", action="store_true", help="do not ask (needed when not run interactively)")
    d.set_defaults(func=run_delete)


def run_create(args: argparse.Namespace) -> int:
    from ..embedders import make_embedder
    from ..kb import KnowledgeBase

    settings = settings_from(args)
    with KnowledgeBase.create(settings, args.name, make_embedder(settings.embedder)) as kb:
        m = kb.manifest
        where = m.store.backend + (f" at {m.store.uri or 'a Milvus Lite file inside it'}"
                                   if m.store.backend == "milvus" else "")
        print(f"created knowledge base {kb.name!r} in {kb.directory} (embedder {m.embedder_id}, "
              f"dim {m.embedder_dim}, chunks of {m.splitter.get('chunk_size')} characters, store {where}); "
              f"add documents with `kb index PATH --kb {kb.name}`")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from ..kb import kb_summaries

    rows = kb_summaries(settings_from(args))
    if args.json:
        print_json([vars(r) for r in rows])
        return 0
    if not rows:
        print("no knowledge bases yet: `kb kb create NAME` or `kb index PATH --kb NAME` creates one")
        return 0
    head = ("name", "documents", "chunks", "embedder", "store", "created", "synced")
    table = [head] + [
        (r.name, "?" if r.documents is None else str(r.documents), "?" if r.chunks is None else str(r.chunks),
         f"{r.embedder} ({r.dim})", r.backend, r.created, r.synced or "-")
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    for r in rows:
        if r.problem:
            print(f"{r.name}: {r.problem}", file=sys.stderr)
    return 0


def run_delete(args: argparse.Namespace) -> int:
    from ..kb import delete_kb, kb_names

    settings = settings_from(args)
    if args.name not in kb_names(settings):
        raise KBError(f"no knowledge base named {args.name!r} (see `kb kb list`)")
    if not args.yes:
        if not sys.stdin.isatty():
            raise KBError(f"not deleting {args.name!r} without confirmation: pass --yes")
        answer = input(f"delete knowledge base {args.name!r} and all its files? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("not deleted")
            return 1
    delete_kb(settings, args.name)
    print(f"deleted knowledge base {args.name!r}")
    return 0
