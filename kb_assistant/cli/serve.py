"""``kb serve`` (the HTTP API) and ``kb keys create|list|revoke`` (its API keys)."""

from __future__ import annotations

import argparse
import sys

from .common import kb_name, print_json, settings_from


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    s = sub.add_parser(
        "serve", help="serve the OpenAI-compatible and REST API (docs at /docs)",
        description="An OpenAI-compatible API (model 'kb:NAME' answers from knowledge base NAME) and a REST "
        "API for knowledge bases. On a non-loopback address it needs an API key to exist (`kb keys create`); "
        "put it behind a TLS reverse proxy to reach it from other machines.",
    )
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    s.set_defaults(func=run_serve)

    k = sub.add_parser("keys", help="create, list or revoke API keys for `kb serve`")
    k_sub = k.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    c = k_sub.add_parser("create", help="create a key; its token is printed once, never again")
    c.add_argument("--kb", metavar="NAME", type=kb_name, help="limit the key to one knowledge base")
    c.add_argument("--scope", choices=("read", "write", "admin"), default="read",
                   help="read: ask, search, list; write: also upload and remove documents; admin: also "
                   "create and delete knowledge bases (default read)")
    c.add_argument("--label", default="", help="a note to recognise the key by in `kb keys list`")
    c.set_defaults(func=run_keys_create)
    ls = k_sub.add_parser("list", help="keys (id, scope, knowledge base, label, created, revoked)")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=run_keys_list)
    r = k_sub.add_parser("revoke", help="revoke a key by its id (from `kb keys list`)")
    r.add_argument("id")
    r.set_defaults(func=run_keys_revoke)


def run_serve(args: argparse.Namespace) -> int:
    from ..server import serve

    serve(settings_from(args), host=args.host, port=args.port)
    return 0


def run_keys_create(args: argparse.Namespace) -> int:
    from ..server.keys import KeyStore

    key, token = KeyStore(settings_from(args).data_dir).create(scope=args.scope, kb=args.kb, label=args.label)
    print(token)
    where = f"knowledge base {key.kb!r}" if key.kb else "every knowledge base"
    print(f"key {key.id}: scope {key.scope} on {where}. This is the only time the token is shown: store it now "
          "(send it as `Authorization: Bearer TOKEN`)", file=sys.stderr)
    return 0


def run_keys_list(args: argparse.Namespace) -> int:
    from ..server.keys import KeyStore

    keys = KeyStore(settings_from(args).data_dir).list()
    if args.json:
        print_json([k.to_dict() for k in keys])
        return 0
    if not keys:
        print("no API keys yet: `kb keys create --scope admin` makes one")
        return 0
    for k in keys:
        d = k.to_dict()
        state = f"revoked {d['revoked']}" if k.revoked else "active"
        print(f"{k.id}  {k.scope:<5}  {k.kb or '*':<16}  created {d['created']}  {state}  {k.label}".rstrip())
    return 0


def run_keys_revoke(args: argparse.Namespace) -> int:
    from ..server.keys import KeyStore

    key = KeyStore(settings_from(args).data_dir).revoke(args.id)
    print(f"revoked key {key.id} ({key.scope} on {key.kb or 'every knowledge base'})")
    return 0
