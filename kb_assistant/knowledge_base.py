"""A named knowledge base: files in, chunks embedded into a vector store, sources out."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .embedders import Embedder
from .errors import EmbedderMismatchError, KBError
from .files import chunk_id, collect_files, file_sha256
from .settings import Settings
from .types import FileOutcome, IndexReport, Source

SCHEMA_VERSION = "1"
_NAME_RE = re.compile(r"^[\w\-\u3400-\u9fff]{1,64}$")

ProgressFn = Callable[[int, int, str], None]
"""Called as ``progress(done_files, total_files, current_path)``."""


@dataclass(frozen=True)
class _Parsed:
    """A file read and split, waiting for its chunks to be embedded."""

    source: str
    content_hash: str
    chunks: list[Any]
    existed: bool


@dataclass(frozen=True)
class DocumentInfo:
    source: str
    chunks: int
    pages: int
    content_hash: str


def validate_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise KBError(
            f"invalid knowledge-base name {name!r}: use 1-64 letters, digits, '_', '-' or Chinese characters"
        )
    return name


def kb_names(settings: Settings) -> list[str]:
    root = settings.kb_root
    return sorted(p.name for p in root.iterdir() if (p / "store").is_dir()) if root.is_dir() else []


def delete_kb(settings: Settings, name: str) -> None:
    path = settings.kb_root / validate_name(name)
    if not path.is_dir():
        raise KBError(f"no knowledge base named {name!r} (see `kb list`)")
    shutil.rmtree(path)


class KnowledgeBase:
    """Composes the ingest leaf (loaders, splitter) and the vector-store leaf under one name."""

    def __init__(self, name: str, store: Any, embedder: Embedder, settings: Settings) -> None:
        from ingest import ChineseTextSplitter

        self.name = name
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.splitter = ChineseTextSplitter(
            chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap
        )

    @classmethod
    def open(
        cls, settings: Settings, name: str, embedder: Embedder, *, create: bool = True
    ) -> KnowledgeBase:
        """Open (or create) knowledge base ``name``; refuses an embedder other than the one it was built with."""
        from vectorstore import open_store

        directory = settings.kb_root / validate_name(name) / "store"
        if not directory.is_dir() and not create:
            raise KBError(f"no knowledge base named {name!r}: create it with `kb index PATH --kb {name}`")
        directory.parent.mkdir(parents=True, exist_ok=True)
        meta_dim = cls._recorded(directory)
        if meta_dim is not None:
            recorded_id, recorded_dim = meta_dim
            if recorded_id != embedder.id or recorded_dim != embedder.dim:
                raise EmbedderMismatchError(
                    f"knowledge base {name!r} was built with embedder {recorded_id} (dim {recorded_dim}), "
                    f"not {embedder.id} (dim {embedder.dim}): set KB_EMBEDDER back, or rebuild it into a new "
                    "knowledge base"
                )
        store = open_store(directory, dim=embedder.dim)
        kb = cls(name, store, embedder, settings)
        if not store.get_meta().get("embedder_id"):
            store.set_meta(
                embedder_id=embedder.id,
                embedder_dim=str(embedder.dim),
                splitter=json.dumps(kb.splitter.settings(), sort_keys=True),
                schema_version=SCHEMA_VERSION,
                created_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
            )
        return kb

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

    # -- writing -------------------------------------------------------------------------------

    def index_paths(self, paths: Iterable[str | Path], *, progress: ProgressFn | None = None) -> IndexReport:
        """Index files and folders: new and edited files are (re)embedded, unchanged ones skipped,
        unreadable ones reported with the reason while the rest go on.

        Chunks of several small files are embedded in one batch (the embedder is much faster on
        full batches) and committed together; each file's swap is still all-or-nothing.
        """
        from ingest import SUPPORTED_SUFFIXES

        candidates = collect_files(paths, SUPPORTED_SUFFIXES)
        known = {d.source: d.content_hash for d in self.documents()}
        report = IndexReport()
        pending: list[_Parsed] = []
        for done, cand in enumerate(candidates):
            if progress:
                progress(done, len(candidates), str(cand.path))
            if cand.skipped:
                report.outcomes.append(FileOutcome(str(cand.path), "skipped", reason=cand.skipped))
                continue
            parsed = self._parse(cand.path, known)
            if isinstance(parsed, FileOutcome):
                report.outcomes.append(parsed)
                continue
            pending.append(parsed)
            if sum(len(p.chunks) for p in pending) >= self.settings.embed_batch_size:
                report.outcomes += self._commit(pending)
                pending = []
        report.outcomes += self._commit(pending)
        if progress:
            progress(len(candidates), len(candidates), "")
        return report

    def _parse(self, path: Path, known: dict[str, str]) -> _Parsed | FileOutcome:
        """Hash, load and split one file; an outcome instead when it is unchanged or unreadable."""
        from ingest import IngestError, load_file

        source = str(path)
        try:
            if not path.is_file():
                raise KBError(f"{path} does not exist or is not a file")
            content_hash = file_sha256(path)
            if known.get(source) == content_hash:
                return FileOutcome(source, "unchanged")
            chunks = self.splitter.split(load_file(path, max_bytes=self.settings.max_file_mb << 20))
            if not chunks:
                raise KBError("no text found in the file")
        except (IngestError, KBError, OSError) as exc:
            return FileOutcome(source, "failed", reason=str(exc))
        return _Parsed(source, content_hash, chunks, source in known)

    def _commit(self, parsed: list[_Parsed]) -> list[FileOutcome]:
        """Embed the chunks of ``parsed`` files together and swap each file's chunks in one commit."""
        from vectorstore import Record

        if not parsed:
            return []
        vectors = self._embed([c.text for p in parsed for c in p.chunks])
        outcomes, row = [], 0
        with self.store.batch():
            for p in parsed:
                records = [
                    Record(
                        id=chunk_id(p.source, p.content_hash, c.index),
                        vector=vectors[row + i],
                        payload={
                            "source": p.source, "doc_hash": p.content_hash, "page": c.page, "start": c.start,
                            "end": c.end, "index": c.index, "text": c.text,
                        },
                    )
                    for i, c in enumerate(p.chunks)
                ]
                row += len(records)
                self.store.replace_where({"source": p.source}, records)
                outcomes.append(FileOutcome(p.source, "updated" if p.existed else "added", chunks=len(records)))
        return outcomes

    def _embed(self, texts: list[str]):  # type: ignore[no-untyped-def]
        import numpy as np

        size = self.settings.embed_batch_size
        parts = [self.embedder.embed_documents(texts[i : i + size]) for i in range(0, len(texts), size)]
        return np.concatenate(parts) if parts else np.zeros((0, self.embedder.dim), dtype=np.float32)
