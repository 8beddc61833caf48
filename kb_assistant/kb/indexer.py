"""The write side of a knowledge base: incremental index, moves, prune, remove and rebuild."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest import Splitter
from vectorstore import VectorStore

from ..embedders import Embedder
from ..errors import KBError
from ..types import FileOutcome, IndexReport
from .embed_cache import EmbedCache
from .files import Candidate, absolute, collect_files, file_sha256, is_under
from .payload import indexed_text
from .pipeline import Prepared, read_ahead
from .reading import IndexLimits, check_chunks, count_streamed, is_streamed, streamed_chunks, vanished
from .records import ChunkRecords
from .storage import busy_as

ProgressFn = Callable[[int, int, str], None]
"""Called as ``progress(done_files, total_files, current_path)``; a large file reports again with the
same counts and ``"path (embedded/total chunks)"`` as its chunks are embedded."""


@dataclass(frozen=True)
class _Parsed:
    """A file read and split, waiting for its chunks to be embedded."""

    source: str
    content_hash: str
    chunks: list[Any]
    existed: bool


def _fresh(payload: dict[str, Any]) -> dict[str, Any]:
    """A chunk's payload without a stale mark."""
    return {k: v for k, v in payload.items() if k != "stale"}


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
        self.splitter = splitter
        self.limits = limits
        self.name = name  # the knowledge base's, for messages
        self.progress = progress
        self.report = IndexReport()
        self.pending: list[_Parsed] = []
        self.stale: dict[str, str] = {}  # indexed sources marked stale, with why (filled by _catalogue)
        self.indexed: set[str] = set()  # sources indexed when the run began
        self.prune = False
        self._at = (0, 0)  # the files done and total of the last progress report
        self.records = ChunkRecords(store, embedder, cache, limits, report=self.report,
                                    note=lambda what: self._tick(*self._at, what))

    # -- runs -----------------------------------------------------------------------------------

    def index(
        self, paths: Iterable[str | Path], *, prune: bool, changed: bool = False,
        ignore: Callable[[Path], bool] | None = None,
    ) -> IndexReport:
        """Index ``paths`` (files and folders). ``changed``: they are the paths a watcher saw change
        (files, folders, or paths now gone), and the run costs the change: only the documents at
        those paths are looked up, by source, rather than every stored payload (see ``_changed_scope``);
        the documents at or under them whose files are gone are handled as in a folder (removed with
        ``prune``). ``ignore``: files left out as if absent (``kb watch``: editors' temporary files)."""
        from ingest import SUPPORTED_SUFFIXES

        given = [Path(p).expanduser() for p in paths]
        self.prune = prune
        if changed:
            roots = [absolute(p) for p in given]
            candidates = collect_files([p for p in given if os.path.lexists(p)], SUPPORTED_SUFFIXES, ignore=ignore)
            known = self._catalogue(self._changed_scope(roots, candidates))
        else:
            roots = [p.resolve() for p in given if p.is_dir()]
            candidates = collect_files(given, SUPPORTED_SUFFIXES, ignore=ignore)
            known = self._catalogue()
        by_hash: dict[str, list[str]] | None = None  # content hash -> sources: built when a new file asks
        seen = {str(c.path) for c in candidates}
        # Hashing and parsing run a few files ahead on a thread (closed below, or when an error drops it).
        ahead = read_ahead(candidates, dict(known), self._parse_ahead, max_chunks=4 * self.limits.batch_size)
        for done, item in enumerate(ahead):
            cand = item.candidate
            self._tick(done, len(candidates), str(cand.path))
            source = str(cand.path)
            if cand.skipped:
                self._outcome(FileOutcome(source, "skipped", reason=cand.skipped))
                continue
            if item.content_hash is None:
                self._failed(source, vanished(cand.path) or str(item.error))
                continue
            content_hash = item.content_hash
            if known.get(source) == content_hash:
                self._set_stale(source, "")  # readable again, as indexed
                self._outcome(FileOutcome(source, "unchanged"))
                continue
            old = None
            if source not in known:
                if by_hash is None:  # not for a re-run over unchanged files: 100,000 lists it never reads
                    by_hash = {}
                    for src, h in known.items():
                        by_hash.setdefault(h, []).append(src)
                old = self._moved_from(by_hash.get(content_hash, []), known, seen)
            if old is not None:
                assert by_hash is not None
                by_hash[content_hash].remove(old)
                moved = self._move(old, source)
                known[source] = known.pop(old)
                self._outcome(FileOutcome(source, "moved", chunks=moved, reason=old))
                continue
            self._queue(cand.path, content_hash, existed=source in known, done=done, total=len(candidates),
                        ahead=item)
            known[source] = content_hash
        ahead.close()
        self._flush()
        gone = sorted(s for s in known if s not in seen and any(is_under(s, r) for r in roots))
        self._gone(gone, prune)
        self._tick(len(candidates), len(candidates), "")
        self.report.stale = len(self.stale)
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
        self.prune = prune
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
                self._failed(source, str(exc))
                continue
            self._queue(path, content_hash, existed=True, done=done, total=len(known), keep_same=True)
        self._flush()
        self._gone(gone, prune)
        self._tick(len(known), len(known), "")
        self.report.stale = len(self.stale)
        return self.report

    # -- pieces ---------------------------------------------------------------------------------

    def _catalogue(self, sources: list[str] | None = None) -> dict[str, str]:
        """Every indexed source with its content hash (one pass over the payloads), or only those of
        ``sources`` (one indexed lookup each); notes the stale ones."""
        known: dict[str, str] = {}
        pages = [self.store.payloads()] if sources is None else [self.store.payloads({"source": s}) for s in sources]
        for page in pages:
            for _, p in page:
                known[p["source"]] = p["doc_hash"]
                if p.get("stale"):
                    self.stale[p["source"]] = p["stale"]
        self.indexed = set(known)
        return known

    def _changed_scope(self, roots: list[Path], candidates: list[Candidate]) -> list[str] | None:
        """The sources a run over changed paths must know: its files and the paths now gone (a moved
        file's old path is among them, as a watcher sees both ends of a move). None, one pass over
        everything, when a path is a folder, or gone and no document's source (it may have been a
        folder): the documents under a folder cannot be looked up by source."""
        for path in roots:
            if path.is_dir() or (not os.path.lexists(path) and not self.store.count({"source": str(path)})):
                return None
        return sorted({str(c.path) for c in candidates} | {str(r) for r in roots})

    def _tick(self, done: int, total: int, path: str) -> None:
        self._at = (done, total)
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
        """Re-point the chunks of ``old`` at ``new``: payloads change, vectors and ids stay. The file at ``new``
        holds the indexed text, so the document is current (no longer stale, if it was)."""
        self.stale.pop(old, None)
        updates = {i: {**_fresh(p), "source": new} for i, p in self.store.payloads({"source": old})}
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
                self.stale.pop(s, None)
                self._outcome(FileOutcome(s, "removed", chunks=self.store.delete_where({"source": s})))

    def _queue(
        self, path: Path, content_hash: str, *, existed: bool, done: int, total: int, keep_same: bool = False,
        ahead: Prepared | None = None,
    ) -> None:
        """Parse one file into the pending batch (or stream it, when large); failures are reported.
        ``keep_same``: a file whose new chunks equal its stored ones is left as it is (rebuild).
        ``ahead``: the file as the read-ahead thread left it (its chunks, when it parsed them)."""
        from ingest import IngestError, load_file

        source = str(path)
        try:
            if is_streamed(path, self.limits):
                self._flush()
                n = self._stream(path, content_hash, done, total)
                self.stale.pop(source, None)
                self._outcome(FileOutcome(source, "updated" if existed else "added", chunks=n))
                return
            chunks = ahead.take_chunks() if ahead is not None else None
            if chunks is None:
                def note(what: str) -> None:
                    self._tick(done, total, f"{source} ({what})")

                docs = load_file(path, limits=self.limits.read_limits, ocr=self.limits.ocr, progress=note)
                chunks = self.splitter.split(docs)
            if not chunks:
                raise KBError("no text found in the file")
            check_chunks(path, len(chunks), self.limits.max_chunks)
            if keep_same and self._same_as_stored(source, content_hash, chunks):
                self._set_stale(source, "")
                self._outcome(FileOutcome(source, "unchanged"))
                return
        except (IngestError, KBError, OSError) as exc:
            self._failed(source, vanished(path) or str(exc))
            return
        self.pending.append(_Parsed(source, content_hash, chunks, existed))
        if sum(len(p.chunks) for p in self.pending) >= self.limits.batch_size:
            self._flush()

    def _failed(self, source: str, reason: str) -> None:
        """A file that cannot be read now. An indexed older version of it keeps answering, marked stale
        (shown in ``kb list`` and beside its sources) so nobody mistakes it for the file's current text;
        with ``--prune`` it is removed instead."""
        if source not in self.indexed:
            self._outcome(FileOutcome(source, "failed", reason=reason))
        elif self.prune:
            with self._batch():
                removed = self.store.delete_where({"source": source})
            self.stale.pop(source, None)
            self._outcome(FileOutcome(source, "failed", reason=f"{reason} (its indexed version was removed: --prune)"))
            self._outcome(FileOutcome(source, "removed", chunks=removed))
        else:
            self._set_stale(source, reason)
            self._outcome(FileOutcome(
                source, "failed", reason=f"{reason} (its indexed version is kept, marked stale; --prune removes it)"
            ))

    def _set_stale(self, source: str, reason: str) -> None:
        """Mark (``reason``) or unmark (``""``) every chunk of an indexed source as stale."""
        if self.stale.get(source, "") == reason:
            return
        updates = {i: {**_fresh(p), "stale": reason} if reason else _fresh(p)
                   for i, p in self.store.payloads({"source": source})}
        with self._batch():
            self.store.update_payloads(updates)
        if reason:
            self.stale[source] = reason
        else:
            self.stale.pop(source, None)

    def _parse_ahead(self, cand: Candidate) -> list[Any] | None:
        """Parse and split a file on the read-ahead thread. Large text files are streamed later instead, and
        PDFs and images are read in turn, where OCR can report its pages on the progress bar."""
        from ingest import IMAGE_SUFFIXES, load_file

        path = cand.path
        if is_streamed(path, self.limits):
            return None
        if path.suffix.lower() in (".pdf", *IMAGE_SUFFIXES):
            return None
        return self.splitter.split(load_file(path, limits=self.limits.read_limits))

    def _same_as_stored(self, source: str, content_hash: str, chunks: list[Any]) -> bool:
        def key(p: dict[str, Any]) -> tuple[Any, ...]:
            return (p["index"], p["start"], p["end"], p.get("page"), p["text"], p["doc_hash"], p.get("heading"),
                    indexed_text(p))  # fmt: skip

        stored = sorted(key(p) for _, p in self.store.payloads({"source": source}))
        return stored == [key(self.records.payload(source, content_hash, c)) for c in chunks]

    def _flush(self) -> None:
        """Embed the pending files' chunks together and swap each file's chunks, all in one commit."""
        parsed, self.pending = self.pending, []
        if not parsed:
            return
        label = parsed[0].source if len(parsed) == 1 else f"{len(parsed)} files"
        payloads = [[self.records.payload(p.source, p.content_hash, c) for c in p.chunks] for p in parsed]
        texts = [indexed_text(payload) for file_payloads in payloads for payload in file_payloads]
        vectors = self.records.embed(texts, label)  # all pending files together: full batches are faster
        row = 0
        with self._batch():
            for p, file_payloads in zip(parsed, payloads, strict=True):
                records = self.records.records(p.source, p.content_hash, p.chunks, file_payloads,
                                        vectors[row : row + len(p.chunks)])
                row += len(records)
                self.store.replace_where({"source": p.source}, records)
                self.stale.pop(p.source, None)  # its new chunks carry no mark
                self._outcome(FileOutcome(p.source, "updated" if p.existed else "added", chunks=len(records)))

    def _stream(self, path: Path, content_hash: str, done: int, total: int) -> int:
        """Index a large text file block by block inside one commit: memory holds one block at a time."""
        expected = count_streamed(path, self.splitter, self.limits)
        source, n = str(path), 0
        with self._batch():
            self.store.delete_where({"source": source})
            for chunks in streamed_chunks(path, self.splitter, self.limits):
                if chunks:
                    payloads = [self.records.payload(source, content_hash, c) for c in chunks]
                    vectors = self.records.embed([indexed_text(pl) for pl in payloads], source, before=n,
                                                 total=expected)
                    self.store.add(self.records.records(source, content_hash, chunks, payloads, vectors))
                n += len(chunks)
                self._tick(done, total, f"{source} ({n}/{expected} chunks)")
            if n == 0:
                raise KBError("no text found in the file")  # rolls the deletion back
        return n
