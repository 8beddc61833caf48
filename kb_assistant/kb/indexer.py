"""The write side of a knowledge base: incremental index, moves, prune, remove and rebuild."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ingest import OcrOptions, Splitter
from vectorstore import VectorStore

from ..embedders import Embedder
from ..errors import KBError
from ..types import FileOutcome, IndexReport
from .embed_cache import EmbedCache, embed_with_cache
from .files import chunk_id, collect_files, file_sha256, is_under
from .payload import chunk_payload, indexed_text
from .storage import busy_as

ProgressFn = Callable[[int, int, str], None]
"""Called as ``progress(done_files, total_files, current_path)``; a large file being streamed
reports again with the same counts and ``"path (N chunks)"``."""


@dataclass(frozen=True)
class _Parsed:
    """A file read and split, waiting for its chunks to be embedded."""

    source: str
    content_hash: str
    chunks: list[Any]
    existed: bool


@dataclass(frozen=True)
class IndexLimits:
    """How the indexer reads and batches: from the settings, passed explicitly."""

    max_file_bytes: int
    batch_size: int
    stream_block_bytes: int  # text files larger than this are streamed block by block
    ocr: OcrOptions | None = None  # OCR of scanned pages and images: on/off and its per-file limits
    heading_prefix: bool = True  # embed and keyword-index each chunk with its heading path in front


def documents_under(known: Iterable[str], paths: Iterable[str | Path]) -> tuple[list[str], list[str]]:
    """The indexed sources that ``paths`` name (a file, or every document under a folder), and the
    paths that name none."""
    known = set(known)
    targets: list[str] = []
    unmatched: list[str] = []
    for raw in paths:
        path = Path(raw).expanduser().resolve()
        hits = [str(path)] if str(path) in known else sorted(s for s in known if is_under(s, path))
        if not hits:
            unmatched.append(str(path))
        targets += [h for h in hits if h not in targets]
    return targets, unmatched


class Indexer:
    """One writing run over a knowledge base's store (the caller holds its writer lock).

    Small files are parsed one by one and their chunks embedded together in batches (the embedder
    is much faster on full batches); each batch is one store commit in which every file's old chunks
    are swapped for its new ones, so a reader or a crash sees each file as before or as after.
    Only one batch of chunks is held in memory at a time; large text files are streamed.
    """

    def __init__(
        self, store: VectorStore, embedder: Embedder, splitter: Splitter, cache: EmbedCache, limits: IndexLimits,
        *, name: str, progress: ProgressFn | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.splitter = splitter
        self.cache = cache
        self.limits = limits
        self.name = name  # the knowledge base's, for messages
        self.progress = progress
        self.report = IndexReport()
        self.pending: list[_Parsed] = []
        # Test hook: slows embedding so the crash test can kill a run part-way.
        self._delay = float(os.environ.get("KB_TEST_EMBED_DELAY") or 0)

    # -- runs -----------------------------------------------------------------------------------

    def index(self, paths: Iterable[str | Path], *, prune: bool) -> IndexReport:
        from ingest import SUPPORTED_SUFFIXES

        paths = list(paths)
        roots = [Path(p).expanduser().resolve() for p in paths if Path(p).expanduser().is_dir()]
        candidates = collect_files(paths, SUPPORTED_SUFFIXES)
        known = self._catalogue()
        by_hash: dict[str, list[str]] = {}
        for src, h in known.items():
            by_hash.setdefault(h, []).append(src)
        seen = {str(c.path) for c in candidates}
        for done, cand in enumerate(candidates):
            self._tick(done, len(candidates), str(cand.path))
            source = str(cand.path)
            if cand.skipped:
                self._outcome(FileOutcome(source, "skipped", reason=cand.skipped))
                continue
            try:
                if not cand.path.is_file():
                    raise KBError(f"{cand.path} does not exist or is not a file")
                content_hash = file_sha256(cand.path)
            except (KBError, OSError) as exc:
                self._outcome(FileOutcome(source, "failed", reason=str(exc)))
                continue
            if known.get(source) == content_hash:
                self._outcome(FileOutcome(source, "unchanged"))
                continue
            old = None if source in known else self._moved_from(by_hash.get(content_hash, []), known, seen)
            if old is not None:
                by_hash[content_hash].remove(old)
                moved = self._move(old, source)
                known[source] = known.pop(old)
                self._outcome(FileOutcome(source, "moved", chunks=moved, reason=old))
                continue
            self._queue(cand.path, content_hash, existed=source in known, done=done, total=len(candidates))
            known[source] = content_hash
        self._flush()
        gone = sorted(s for s in known if s not in seen and any(is_under(s, r) for r in roots))
        self._gone(gone, prune)
        self._tick(len(candidates), len(candidates), "")
        return self.report

    def remove(self, paths: Iterable[str | Path]) -> IndexReport:
        targets, unmatched = documents_under(self._catalogue(), paths)
        for path in unmatched:
            self._outcome(FileOutcome(path, "failed", reason="not in the knowledge base"))
        with self._batch():
            for source in targets:
                removed = self.store.delete_where({"source": source})
                self._outcome(FileOutcome(source, "removed", chunks=removed))
        return self.report

    def rebuild(self, *, prune: bool) -> IndexReport:
        known = sorted(self._catalogue())
        gone = []
        for done, source in enumerate(known):
            self._tick(done, len(known), source)
            path = Path(source)
            try:
                if not path.is_file():
                    gone.append(source)
                    continue
                content_hash = file_sha256(path)
            except OSError as exc:
                self._outcome(FileOutcome(source, "failed", reason=str(exc)))
                continue
            self._queue(path, content_hash, existed=True, done=done, total=len(known), keep_same=True)
        self._flush()
        self._gone(gone, prune)
        self._tick(len(known), len(known), "")
        return self.report

    # -- pieces ---------------------------------------------------------------------------------

    def _catalogue(self) -> dict[str, str]:
        """Every indexed source with its content hash (one pass over the payloads)."""
        return {p["source"]: p["doc_hash"] for _, p in self.store.payloads()}

    def _tick(self, done: int, total: int, path: str) -> None:
        if self.progress:
            self.progress(done, total, path)

    def _outcome(self, outcome: FileOutcome) -> None:
        self.report.outcomes.append(outcome)

    @contextmanager
    def _batch(self) -> Iterator[None]:
        with busy_as(self.name), self.store.batch():
            yield

    @staticmethod
    def _moved_from(same_content: list[str], known: dict[str, str], seen: set[str]) -> str | None:
        """An indexed source with this content whose file is gone: the file was renamed or moved."""
        for source in same_content:
            if source in known and source not in seen and not os.path.exists(source):
                return source
        return None

    def _move(self, old: str, new: str) -> int:
        """Re-point the chunks of ``old`` at ``new``: payloads change, vectors and ids stay."""
        updates = {i: {**p, "source": new} for i, p in self.store.payloads({"source": old})}
        with self._batch():
            return int(self.store.update_payloads(updates))

    def _gone(self, sources: list[str], prune: bool) -> None:
        if not sources:
            return
        if not prune:
            for s in sources:
                self._outcome(FileOutcome(s, "missing", reason="file no longer exists (use --prune to remove)"))
            return
        with self._batch():
            for s in sources:
                self._outcome(FileOutcome(s, "removed", chunks=self.store.delete_where({"source": s})))

    def _queue(
        self, path: Path, content_hash: str, *, existed: bool, done: int, total: int, keep_same: bool = False
    ) -> None:
        """Parse one file into the pending batch (or stream it, when large); failures are reported.
        ``keep_same``: a file whose new chunks equal its stored ones is left as it is (rebuild)."""
        from ingest import STREAMABLE_SUFFIXES, IngestError, load_file

        source = str(path)
        try:
            if path.suffix.lower() in STREAMABLE_SUFFIXES and path.stat().st_size > self.limits.stream_block_bytes:
                self._flush()
                n = self._stream(path, content_hash, done, total)
                self._outcome(FileOutcome(source, "updated" if existed else "added", chunks=n))
                return
            def note(what: str) -> None:
                self._tick(done, total, f"{source} ({what})")

            docs = load_file(path, max_bytes=self.limits.max_file_bytes, ocr=self.limits.ocr, progress=note)
            chunks = self.splitter.split(docs)
            if not chunks:
                raise KBError("no text found in the file")
            if keep_same and self._same_as_stored(source, content_hash, chunks):
                self._outcome(FileOutcome(source, "unchanged"))
                return
        except (IngestError, KBError, OSError) as exc:
            self._outcome(FileOutcome(source, "failed", reason=str(exc)))
            return
        self.pending.append(_Parsed(source, content_hash, chunks, existed))
        if sum(len(p.chunks) for p in self.pending) >= self.limits.batch_size:
            self._flush()

    def _same_as_stored(self, source: str, content_hash: str, chunks: list[Any]) -> bool:
        def key(p: dict[str, Any]) -> tuple[Any, ...]:
            return (p["index"], p["start"], p["end"], p.get("page"), p["text"], p["doc_hash"], p.get("heading"),
                    indexed_text(p))  # fmt: skip

        stored = sorted(key(p) for _, p in self.store.payloads({"source": source}))
        return stored == [key(self._payload(source, content_hash, c)) for c in chunks]

    def _payload(self, source: str, content_hash: str, chunk: Any) -> dict[str, Any]:
        return chunk_payload(source, content_hash, chunk, prefix_heading=self.limits.heading_prefix)

    def _embed_chunks(self, source: str, content_hash: str, chunks: list[Any]) -> np.ndarray:
        return self._embed([indexed_text(self._payload(source, content_hash, c)) for c in chunks])

    def _flush(self) -> None:
        """Embed the pending files' chunks together and swap each file's chunks, all in one commit."""
        parsed, self.pending = self.pending, []
        if not parsed:
            return
        texts = [indexed_text(self._payload(p.source, p.content_hash, c)) for p in parsed for c in p.chunks]
        vectors = self._embed(texts)  # all pending files together: the embedder is faster on full batches
        row = 0
        with self._batch():
            for p in parsed:
                records = self._records(p.source, p.content_hash, p.chunks, vectors[row : row + len(p.chunks)])
                row += len(records)
                self.store.replace_where({"source": p.source}, records)
                self._outcome(FileOutcome(p.source, "updated" if p.existed else "added", chunks=len(records)))

    def _stream(self, path: Path, content_hash: str, done: int, total: int) -> int:
        """Index a large text file block by block inside one commit: memory holds one block at a time."""
        from ingest import Chunk, stream_text

        source, n = str(path), 0
        with self._batch():
            self.store.delete_where({"source": source})
            for offset, doc in stream_text(path, block_bytes=self.limits.stream_block_bytes):
                chunks = [
                    Chunk(c.text, source, c.start + offset, c.end + offset, page=None, index=n + i)
                    for i, c in enumerate(self.splitter.split_document(doc))
                ]
                if chunks:
                    vectors = self._embed_chunks(source, content_hash, chunks)
                    self.store.add(self._records(source, content_hash, chunks, vectors))
                n += len(chunks)
                self._tick(done, total, f"{source} ({n} chunks)")
            if n == 0:
                raise KBError("no text found in the file")  # rolls the deletion back
        return n

    def _records(self, source: str, content_hash: str, chunks: list[Any], vectors: np.ndarray) -> list[Any]:
        from vectorstore import Record

        payloads = [self._payload(source, content_hash, c) for c in chunks]
        ids = [chunk_id(source, content_hash, c.index) for c in chunks]
        # An id can be taken by chunks moved here from elsewhere, or hold this file's chunk with other
        # indexed text (a rebuild after a chunk-size or heading-prefix change): pick another, so that
        # the keyword index, which follows ids, sees the old chunk go and the new one come.
        salts, pending = [0] * len(chunks), list(range(len(chunks)))
        while pending:
            found = {r.id: r.payload for r in self.store.get([ids[i] for i in pending]) if r is not None}
            pending = [
                i for i in pending
                if ids[i] in found and (found[ids[i]].get("source") != source
                                        or indexed_text(found[ids[i]]) != indexed_text(payloads[i]))
            ]  # fmt: skip
            for i in pending:
                salts[i] += 1
                ids[i] = chunk_id(source, content_hash, chunks[i].index, salts[i])
        return [Record(ids[i], vectors[i], payloads[i]) for i in range(len(chunks))]

    def _embed(self, texts: list[str]) -> np.ndarray:
        embedder = self.embedder

        def compute(batch: list[str]) -> np.ndarray:
            if self._delay:
                time.sleep(self._delay)
            return embedder.embed_documents(batch)

        vectors, computed = embed_with_cache(
            texts, compute, embedder.id, embedder.dim, self.cache, batch_size=self.limits.batch_size
        )
        self.report.embedded += computed
        self.report.cached += len(texts) - computed
        return vectors
