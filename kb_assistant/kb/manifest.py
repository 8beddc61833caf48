"""A knowledge base's ``manifest.json``: the one record of how it was built and where its store lives.

Older knowledge bases are brought forward by numbered migrations when they are opened for writing:
version 1 kept the store's location in ``store/milvus.json`` (now ``store.uri`` / ``store.collection``),
version 2 did not record the heading prefix, and knowledge bases from before manifests kept the embedder
and splitter in the store's meta table.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vectorstore.fsutil import atomic_write

from ..errors import KBError

MANIFEST_FILE = "manifest.json"
STORE_DIR = "store"
LEGACY_MILVUS_FILE = "milvus.json"  # version 1: where a Milvus store lived, inside the store directory


def now() -> str:
    """A manifest timestamp."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


@dataclass(frozen=True)
class StoreRecord:
    """Which vector store holds the chunks: ``faiss`` in ``store/``, or a Milvus collection."""

    backend: str = "faiss"
    uri: str | None = None  # Milvus: a Milvus Lite file (relative = inside store/) or http(s)://host:port
    collection: str | None = None  # Milvus collection name

    def options(self) -> dict[str, Any]:
        """Backend keyword arguments that say where the store lives (nothing for FAISS)."""
        return {k: v for k, v in (("uri", self.uri), ("collection", self.collection)) if v is not None}


@dataclass(frozen=True)
class Manifest:
    """What a knowledge base was built with; checked on every open."""

    name: str
    embedder_id: str
    embedder_dim: int
    splitter: Mapping[str, Any]
    store: StoreRecord = field(default_factory=StoreRecord)
    parser_version: int = 0  # 0: built before the parser version was recorded
    heading_prefix: bool = False  # chunks embedded and keyword-indexed with their heading path in front
    created: str = field(default_factory=now)
    rebuilt: str | None = None  # when `kb rebuild` last re-split every document
    indexed: str | None = None  # when an indexing run last changed the documents (any door)
    synced: str | None = None  # when `kb watch` last brought the documents in step with its folders

    @property
    def store_backend(self) -> str:
        return self.store.backend

    def to_json(self) -> str:
        body = asdict(self)
        body["schema_version"] = len(MIGRATIONS)
        body["embedder"] = {"id": body.pop("embedder_id"), "dim": body.pop("embedder_dim")}
        body["store"] = {k: v for k, v in body["store"].items() if v is not None}
        return json.dumps(body, ensure_ascii=False, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Manifest:
        """From a JSON body at the current schema version."""
        return cls(
            name=body["name"], embedder_id=body["embedder"]["id"], embedder_dim=int(body["embedder"]["dim"]),
            splitter=dict(body["splitter"]), store=StoreRecord(**body.get("store", {})),
            parser_version=int(body.get("parser_version", 0)), heading_prefix=bool(body["heading_prefix"]),
            created=body.get("created") or now(),
            rebuilt=body.get("rebuilt"), indexed=body.get("indexed"), synced=body.get("synced"),
        )


# -- migrations: each takes the knowledge-base directory and the body at the previous version ---------

Migration = Callable[[Path, dict[str, Any]], dict[str, Any]]


def m001_initial(kb_dir: Path, body: dict[str, Any]) -> dict[str, Any]:
    """Version 1: name, embedder {id, dim}, splitter, store {backend}, created, rebuilt."""
    return body


def m002_store_location(kb_dir: Path, body: dict[str, Any]) -> dict[str, Any]:
    """Version 2: the Milvus location moves from ``store/milvus.json`` into ``store``; parser version."""
    legacy = legacy_milvus_location(kb_dir)  # a Milvus store, created there or switched to by `kb migrate`
    store = asdict(legacy) if legacy else dict(body.get("store") or {"backend": "faiss"})
    return {**body, "store": store, "parser_version": body.get("parser_version", 0)}


def m003_heading_prefix(kb_dir: Path, body: dict[str, Any]) -> dict[str, Any]:
    """Version 3: whether chunks were embedded with their heading path in front (``KB_HEADING_PREFIX``).

    Heading paths came with parser version 2, and with them the setting, on by default: a knowledge
    base built by an earlier parser has no headings, so nothing was prefixed (False; a rebuild adds
    paths and prefix alike), and one built by parser 2 is taken to have had the default (True). Each
    chunk's payload says for itself whether it was prefixed, so a wrong guess costs only the rebuild
    note, never a wrong search."""
    return {**body, "heading_prefix": body.get("heading_prefix", int(body.get("parser_version", 0)) >= 2)}


def legacy_milvus_location(kb_dir: Path) -> StoreRecord | None:
    """Where a version-1 knowledge base's Milvus store lives, from its ``store/milvus.json``; or None."""
    legacy = kb_dir / STORE_DIR / LEGACY_MILVUS_FILE
    if not legacy.is_file():
        return None
    where = json.loads(legacy.read_text(encoding="utf-8"))
    return StoreRecord("milvus", str(where["uri"]), str(where["collection"]))


# Append only: never edit or reorder a migration that has shipped. The schema version is their count.
MIGRATIONS: list[Migration] = [m001_initial, m002_store_location, m003_heading_prefix]


def read_manifest(kb_dir: Path) -> Manifest | None:
    """The manifest in ``kb_dir``, brought to the current schema in memory; None when there is none."""
    return load_manifest(kb_dir)[0]


def load_manifest(kb_dir: Path) -> tuple[Manifest | None, bool]:
    """``(manifest or None, whether the file on disk is at the current schema)``: read once, with the
    migrations applied in memory; the caller writes it back when it is not current."""
    path = kb_dir / MANIFEST_FILE
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        version = int(body.get("schema_version", 1))
        if version > len(MIGRATIONS):
            raise KBError(f"{path} was written by a newer kb-assistant (manifest version {version}); upgrade")
        for migration in MIGRATIONS[version:]:
            body = migration(kb_dir, body)
        return Manifest.from_body(body), version == len(MIGRATIONS)
    except FileNotFoundError:
        return None, False
    except (ValueError, KeyError, TypeError) as exc:
        raise KBError(f"{path} is not a valid manifest ({exc}); fix it, or restore it from a backup") from exc


def write_manifest(kb_dir: Path, manifest: Manifest) -> None:
    """Replace the manifest atomically; a legacy ``milvus.json`` it has absorbed is removed after."""
    atomic_write(kb_dir / MANIFEST_FILE, manifest.to_json())
    (kb_dir / STORE_DIR / LEGACY_MILVUS_FILE).unlink(missing_ok=True)


def manifest_from_store_meta(name: str, meta: Mapping[str, str], backend: str) -> Manifest | None:
    """For knowledge bases built before manifests: what the store's meta table recorded, or None."""
    if not meta.get("embedder_id"):
        return None
    return Manifest(
        name, meta["embedder_id"], int(meta.get("embedder_dim") or 0), json.loads(meta.get("splitter") or "{}"),
        StoreRecord(backend), created=meta.get("created_at") or now(),
    )
