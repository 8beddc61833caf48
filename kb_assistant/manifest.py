"""A knowledge base's ``manifest.json``: how it was built, human-readable, written atomically."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import KBError

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1


def atomic_write_text(path: Path, text: str) -> None:
    """Write aside, fsync, rename over ``path``, fsync the directory: a crash leaves old or new, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class Manifest:
    """What a knowledge base was built with; checked on every open."""

    name: str
    embedder_id: str
    embedder_dim: int
    splitter: dict[str, Any]
    store_backend: str = "faiss"
    schema_version: int = MANIFEST_VERSION
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    rebuilt: str | None = None  # when `kb rebuild` last re-split every document

    def to_json(self) -> str:
        body = asdict(self)
        body["embedder"] = {"id": body.pop("embedder_id"), "dim": body.pop("embedder_dim")}
        body["store"] = {"backend": body.pop("store_backend")}
        return json.dumps(body, ensure_ascii=False, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        body = json.loads(text)
        embedder, store = body.pop("embedder"), body.pop("store", {})
        return cls(
            embedder_id=embedder["id"], embedder_dim=int(embedder["dim"]),
            store_backend=store.get("backend", "faiss"), **body,
        )


def read_manifest(kb_dir: Path) -> Manifest | None:
    """The manifest of the knowledge base in ``kb_dir``; None when it has none yet."""
    path = kb_dir / MANIFEST_FILE
    try:
        return Manifest.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise KBError(
            f"{path} is not a valid manifest ({exc}); fix or delete it (it is re-created from the store)"
        ) from exc


def write_manifest(kb_dir: Path, manifest: Manifest) -> None:
    atomic_write_text(kb_dir / MANIFEST_FILE, manifest.to_json())
