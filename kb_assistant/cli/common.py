"""Helpers shared by the command modules."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..settings import Settings, load_settings


def settings_from(args: argparse.Namespace) -> Settings:
    return load_settings(
        data_dir=getattr(args, "data_dir", None), store=getattr(args, "store", None),
        store_uri=getattr(args, "uri", None),
    )


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """``--store`` / ``--uri``: where a knowledge base created by this command keeps its vectors."""
    parser.add_argument(
        "--store", choices=("faiss", "milvus"),
        help="vector store of a NEW knowledge base (KB_STORE; default faiss); an existing one keeps its "
        "store: `kb migrate` moves it",
    )
    parser.add_argument(
        "--uri", metavar="URI",
        help="with --store milvus: a Milvus Lite file (path ending in .db) or http(s)://host:19530 "
        "(KB_STORE_URI; default a .db inside the knowledge base; a server token goes in KB_STORE_TOKEN)",
    )


def add_kb_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kb", metavar="NAME", type=kb_name,
                        help="knowledge base (default: KB_DEFAULT_KB or 'default')")


def kb_name(value: str) -> str:
    """An argparse type: a knowledge-base name, never empty (an empty one would silently mean the default)."""
    if not value.strip():
        raise argparse.ArgumentTypeError("a knowledge-base name cannot be empty")
    return value


def top_k(value: str) -> int:
    """An argparse type: how many sources, 1 to 100 (as the KB_TOP_K setting)."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if not 1 <= number <= 100:
        raise argparse.ArgumentTypeError(f"{number} is out of range: choose 1 to 100")
    return number


def one_line(text: str) -> str:
    """``text`` (a file name) on one line: a newline or other control character in it is escaped
    (``\\n``), so each printed line is still one entry."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
