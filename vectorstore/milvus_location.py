"""Where a Milvus store lives: its URI (a Milvus Lite ``.db`` or a server), collection name and ``milvus.json``."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from .errors import VectorStoreError
from .fsutil import atomic_write

MANIFEST = "milvus.json"  # in the store directory: which URI and collection hold this store
LITE_FILE = "milvus.db"  # default Milvus Lite location inside the store directory


def resolve(uri: str, directory: Path | None) -> tuple[str, str | None]:
    """``(uri for pymilvus, absolute Lite path or None)``; relative Lite paths are inside ``directory``."""
    if uri.startswith(("http://", "https://", "tcp://", "unix:")):
        return uri, None
    if not uri.endswith(".db"):
        raise VectorStoreError(
            f"Milvus uri {uri!r} is neither http(s)://host:port nor a local file ending in .db (Milvus Lite)"
        )
    path = Path(uri).expanduser()
    if not path.is_absolute():
        path = (directory or Path.cwd()) / path
    return str(path.resolve()), str(path.resolve())


def default_collection(directory: str | Path) -> str:
    """A Milvus collection name for a store directory: ``kb_<name>`` (``<name>/store`` -> the kb name).

    Milvus names are ASCII letters, digits and ``_``; other names (e.g. Chinese) keep their ASCII
    part and gain a short hash so they stay unique.
    """
    path = Path(directory)
    name = path.parent.name if path.name == "store" and path.parent.name else path.name
    safe = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if safe != name or not safe:
        safe = f"{safe.strip('_')[:40]}_{hashlib.sha1(name.encode()).hexdigest()[:10]}".lstrip("_")
    return f"kb_{safe}"[:200]


def read_manifest(directory: str | Path) -> dict[str, str] | None:
    """The ``milvus.json`` of a store directory (``{"uri", "collection"}``), or None."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return {"uri": str(data["uri"]), "collection": str(data["collection"])}


def write_manifest(directory: str | Path, uri: str, collection: str) -> None:
    """Record where the store of ``directory`` lives (never the token); atomic replace."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    body = {"backend": "milvus", "uri": uri, "collection": collection}
    atomic_write(directory / MANIFEST, (json.dumps(body, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
