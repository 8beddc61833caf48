"""A named knowledge base: files in, chunks embedded into a vector store, sources out."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.encoding import STREAM_BLOCK_BYTES

from .embedders import Embedder
from .errors import EmbedderMismatchError, KBError
from .manifest import MANIFEST_FILE, Manifest, read_manifest, write_manifest
from .settings import Settings
from .types import IndexReport, Source

SCHEMA_VERSION = "1"
_NAME_RE = re.compile(r"^[\w\-\u3400-\u9fff]{1,64}$")
STORE_DIR = "store"
LOCK_FILE = "kb.lock"
DEFAULT_WAIT = 10.0  # seconds a second writer waits for the first before giving up

ProgressFn = Callable[[int, int, str], None]
"""Called as ``progress(done_files, total_files, current_path)``; a large file being streamed
reports again with the same counts and ``"path (N chunks)"``."""


class KBBusyError(KBError):
    """Another process is changing this knowledge base."""


@dataclass(frozen=True)
class DocumentInfo:
    source: str
    chunks: int
    pages: int
    content_hash: str


@dataclass(frozen=True)
class KBSummary:
    """One row of ``kb kb list``."""

    name: str
    documents: int | None
    chunks: int | None
    embedder: str
    dim: int
    created: str
    backend: str
    problem: str = ""  # why counts are missing, e.g. an old store that needs an upgrade


def validate_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise KBError(
            f"invalid knowledge-base name {name!r}: use 1-64 letters, digits, '_', '-' or Chinese characters"
        )
    return name


def _exists(kb_dir: Path) -> bool:
    return (kb_dir / STORE_DIR).is_dir() or (kb_dir / MANIFEST_FILE).is_file()


def kb_names(settings: Settings) -> list[str]:
    root = settings.kb_root
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".") and _exists(p))


@contextmanager
def writer_lock(kb_dir: Path, name: str, wait: float = DEFAULT_WAIT) -> Iterator[None]:
    """Hold the knowledge base's writer lock (one indexing run at a time; readers never take it)."""
    from vectorstore import StoreLockedError
    from vectorstore.lock import WriterLock

    lock = WriterLock(kb_dir / LOCK_FILE)
    try:
        lock.acquire(wait)
    except StoreLockedError as exc:
        raise KBBusyError(f"knowledge base {name!r} is busy: {exc}") from None
    try:
        yield
    finally:
        lock.release()


def create_kb(settings: Settings, name: str, embedder: Embedder) -> KnowledgeBase:
    """Create an empty knowledge base; refuses a name already taken."""
    if _exists(settings.kb_root / validate_name(name)):
        raise KBError(f"knowledge base {name!r} already exists (see `kb kb list`)")
    return KnowledgeBase.open(settings, name, embedder)


def delete_kb(settings: Settings, name: str, *, wait: float = 0.0) -> None:
    """Delete a knowledge base and everything in its directory; refuses while it is being written."""
    path = settings.kb_root / validate_name(name)
    if not _exists(path):
        raise KBError(f"no knowledge base named {name!r} (see `kb list`)")
    with writer_lock(path, name, wait):
        # Renamed first, so a crash part-way leaves a hidden leftover, never a half knowledge base.
        doomed = path.with_name(f".{name}.deleting-{os.getpid()}")
        path.rename(doomed)
    shutil.rmtree(doomed)


def kb_summaries(settings: Settings) -> list[KBSummary]:
    """Name, documents, chunks, embedder and creation time of every knowledge base (read-only)."""
    from vectorstore import VectorStoreError, open_store

    rows = []
    for name in kb_names(settings):
        kb_dir = settings.kb_root / name
        manifest = read_manifest(kb_dir)
        docs = chunks = None
        problem = ""
        backend = _backend(kb_dir, manifest, settings)
        meta: dict[str, str] = {}
        try:
            token: dict[str, Any] = {"token": settings.store_token} if backend == "milvus" else {}
            with open_store(kb_dir / STORE_DIR, backend=backend, read_only=True, **token) as store:
                meta = store.get_meta()
                sources = {p["source"] for _, p in store.payloads()}
                docs, chunks = len(sources), store.count()
        except (VectorStoreError, OSError) as exc:
            problem = str(exc)
        rows.append(KBSummary(
            name, docs, chunks,
            manifest.embedder_id if manifest else meta.get("embedder_id", "?"),
            manifest.embedder_dim if manifest else int(meta.get("embedder_dim", 0) or 0),
            manifest.created if manifest else meta.get("created_at", ""), backend, problem,
        ))
    return rows


def _backend(kb_dir: Path, manifest: Manifest | None, settings: Settings) -> str:
    if (kb_dir / STORE_DIR / "milvus.json").exists():  # switched by `kb migrate`
        return "milvus"
    return manifest.store_backend if manifest else settings.store


class KnowledgeBase:
    """Composes the ingest leaf (loaders, splitter) and the vector-store leaf under one name."""

    def __init__(
        self, name: str, store: Any, embedder: Embedder, settings: Settings, manifest: Manifest | None = None
    ) -> None:
        from ingest import ChineseTextSplitter

        self.name = name
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.directory = settings.kb_root / name
        self.splitter = ChineseTextSplitter(
            chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap
        )
        self.manifest = manifest
        self.stream_block_bytes = STREAM_BLOCK_BYTES  # text files larger than this are streamed

    @classmethod
    def open(
        cls, settings: Settings, name: str, embedder: Embedder, *, create: bool = True
    ) -> KnowledgeBase:
        """Open (or create) knowledge base ``name``; refuses an embedder other than the one it was built with."""
        from vectorstore import DimensionMismatchError, StoreLockedError, open_store

        kb_dir = settings.kb_root / validate_name(name)
        directory = kb_dir / STORE_DIR
        if not _exists(kb_dir) and not create:
            raise KBError(f"no knowledge base named {name!r}: create it with `kb kb create {name}` "
                          f"or `kb index PATH --kb {name}`")
        kb_dir.mkdir(parents=True, exist_ok=True)
        manifest = read_manifest(kb_dir)
        recorded = (manifest.embedder_id, manifest.embedder_dim) if manifest else cls._recorded(directory)
        if recorded is not None:
            recorded_id, recorded_dim = recorded
            if recorded_id != embedder.id or recorded_dim != embedder.dim:
                raise EmbedderMismatchError(
                    f"knowledge base {name!r} was built with embedder {recorded_id} (dim {recorded_dim}), "
                    f"not {embedder.id} (dim {embedder.dim}): set KB_EMBEDDER back, or rebuild it into a new "
                    "knowledge base"
                )
        backend = _backend(kb_dir, manifest, settings)
        where: dict[str, Any] = {}
        if backend == "milvus":  # a new collection also gets Milvus's own BM25 where the server has it
            where = {"uri": settings.store_uri, "token": settings.store_token, "full_text": None}
        try:
            store = open_store(directory, backend=backend, dim=embedder.dim, **where)
        except StoreLockedError as exc:
            raise KBBusyError(f"knowledge base {name!r} is busy: {exc}") from None
        except DimensionMismatchError as exc:
            raise EmbedderMismatchError(f"knowledge base {name!r}: {exc}") from None
        kb = cls(name, store, embedder, settings, manifest)
        try:
            meta = store.get_meta()
            stored_id = meta.get("embedder_id")
            if stored_id and (stored_id, meta.get("embedder_dim")) != (embedder.id, str(embedder.dim)):
                # a store without manifest or SQLite meta (e.g. Milvus) is checked here instead
                raise EmbedderMismatchError(
                    f"knowledge base {name!r} was built with embedder {stored_id}, not {embedder.id}: "
                    "set KB_EMBEDDER back, or rebuild it into a new knowledge base")
            if not meta.get("embedder_id"):
                meta = dict(
                    embedder_id=embedder.id,
                    embedder_dim=str(embedder.dim),
                    splitter=json.dumps(kb.splitter.settings(), sort_keys=True),
                    schema_version=SCHEMA_VERSION,
                    created_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
                )
                store.set_meta(**meta)
            if manifest is None:  # new, or built before manifests: record how it was built
                kb.manifest = Manifest(
                    name, embedder.id, embedder.dim, json.loads(meta["splitter"]), backend,
                    created=meta.get("created_at") or time.strftime("%Y-%m-%dT%H:%M:%S"),
                )
                write_manifest(kb_dir, kb.manifest)
        except StoreLockedError as exc:
            store.close()
            raise KBBusyError(f"knowledge base {name!r} is busy: {exc}") from None
        except BaseException:
            store.close()
            raise
        return kb

    @property
    def splitter_changed(self) -> bool:
        """True when the current chunk settings differ from those the knowledge base was built with."""
        return self.manifest is not None and self.manifest.splitter != self.splitter.settings()

    @staticmethod
    def _recorded(directory: Path) -> tuple[str, int] | None:
        """Embedder id and dimension a store was built with, read without opening its index."""
        import sqlite3

        db = directory / "store.sqlite"
        if not db.exists():
            return None
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            rows = dict(con.execute("SELECT key, value FROM meta WHERE key IN ('embedder_id', 'embedder_dim')"))
        except sqlite3.Error:
            return None
        finally:
            con.close()
        if "embedder_id" not in rows:
            return None
        return rows["embedder_id"], int(rows.get("embedder_dim", 0))

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -------------------------------------------------------------------------------

    def count(self) -> int:
        return int(self.store.count())

    def documents(self) -> list[DocumentInfo]:
        """One row per indexed file: chunks, pages, content hash."""
        docs: dict[str, dict[str, Any]] = {}
        for _id, payload in self.store.payloads():
            d = docs.setdefault(payload["source"], {"chunks": 0, "pages": set(), "hash": payload["doc_hash"]})
            d["chunks"] += 1
            if payload.get("page") is not None:
                d["pages"].add(payload["page"])
        return [
            DocumentInfo(src, d["chunks"], len(d["pages"]), d["hash"]) for src, d in sorted(docs.items())
        ]

    def search(self, query: str, k: int | None = None) -> list[Source]:
        """Dense retrieval: the ``k`` chunks closest to ``query``, best first."""
        vector = self.embedder.embed_query(query)
        hits = self.store.search(vector, k or self.settings.top_k)
        return [self._source(h.id, h.score, h.payload) for h in hits]

    @staticmethod
    def _source(id_: int, score: float, p: dict[str, Any]) -> Source:
        return Source(
            id=id_, text=p["text"], source=p["source"], start=p["start"], end=p["end"], score=float(score),
            page=p.get("page"), chunk_index=p.get("index", 0),
        )

    # -- writing (see indexer.py) -------------------------------------------------------------

    def index_paths(
        self, paths: Iterable[str | Path], *, progress: ProgressFn | None = None, prune: bool = False,
        wait: float = DEFAULT_WAIT,
    ) -> IndexReport:
        """Index files and folders incrementally: new and edited files are (re)embedded, unchanged ones
        skipped, renamed or moved ones re-pointed, unreadable ones reported while the rest go on.
        Files gone from an indexed folder are removed with ``prune``, else reported as missing.
        Another writer is waited for up to ``wait`` seconds (then ``KBBusyError``)."""
        from .indexer import Indexer

        with writer_lock(self.directory, self.name, wait), Indexer(self, progress) as ix:
            return ix.index(paths, prune=prune)

    def remove(self, paths: Iterable[str | Path], *, wait: float = DEFAULT_WAIT) -> IndexReport:
        """Delete the chunks of these files (or of every document under a folder) from the store."""
        from .indexer import Indexer

        with writer_lock(self.directory, self.name, wait), Indexer(self, None) as ix:
            return ix.remove(paths)

    def rebuild(
        self, *, progress: ProgressFn | None = None, prune: bool = False, wait: float = DEFAULT_WAIT
    ) -> IndexReport:
        """Re-read and re-split every recorded source with the current settings; cached embeddings
        are reused for chunk texts seen before. Each file is swapped in one step."""
        from .indexer import Indexer

        with writer_lock(self.directory, self.name, wait), Indexer(self, progress) as ix:
            return ix.rebuild(prune=prune)
