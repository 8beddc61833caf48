"""A named knowledge base: opened from its manifest, indexed, searched and closed in one place."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ingest import PARSER_VERSION, Splitter
from ingest.encoding import STREAM_BLOCK_BYTES
from vectorstore import VectorStore

from ..embedders import Embedder
from ..errors import EmbedderMismatchError, KBError
from ..settings import Settings
from ..types import IndexReport, Source
from .catalog import exists, validate_name
from .embed_cache import CACHE_FILE, EmbedCache
from .housekeeping import GcReport, collect_garbage, worth_collecting
from .indexer import Indexer, ProgressFn, documents_under
from .keyword import KeywordIndex, open_keyword_index
from .manifest import (
    Manifest,
    StoreRecord,
    load_manifest,
    manifest_from_store_meta,
    now,
    write_manifest,
)
from .payload import source_from_payload
from .reading import IndexLimits
from .retriever import Retriever
from .storage import busy_as, open_kb_store, store_record, writer_lock_for

DEFAULT_WAIT = 10.0  # seconds a second writer waits for the first before giving up
CHANGES = ("added", "updated", "moved", "removed")  # outcomes that changed the documents


@dataclass(frozen=True)
class DocumentInfo:
    source: str
    chunks: int
    pages: int
    content_hash: str
    stale: str = ""  # why its file cannot be read now (the indexed version is older); "" = current


class KnowledgeBase:
    """Owns one knowledge base: its manifest, store, embedder, splitter, keyword index and writer
    lock. Indexing and retrieval are done by an :class:`Indexer` and a :class:`Retriever` that are
    handed these collaborators explicitly."""

    def __init__(
        self, name: str, directory: Path, store: VectorStore, embedder: Embedder, settings: Settings,
        manifest: Manifest,
    ) -> None:
        self.name = name
        self.directory = directory
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.manifest = manifest
        self.splitter = make_splitter(settings)
        self.stream_block_bytes = STREAM_BLOCK_BYTES  # text files larger than this are streamed
        self._keyword: dict[str, KeywordIndex] = {}

    # -- opening and closing --------------------------------------------------------------------

    @classmethod
    def open(cls, settings: Settings, name: str, embedder: Embedder, *, create: bool = True) -> KnowledgeBase:
        """Open (or create) knowledge base ``name``; refuses an embedder other than the one it was built
        with. An older knowledge base has its manifest brought up to date (see manifest.py)."""
        from vectorstore import DimensionMismatchError

        kb_dir = settings.kb_root / validate_name(name)
        if not exists(kb_dir) and not create:
            raise KBError(f"no knowledge base named {name!r}: create it with `kb kb create {name}` "
                          f"or `kb index PATH --kb {name}`")
        kb_dir.mkdir(parents=True, exist_ok=True)
        manifest, current = load_manifest(kb_dir)
        if manifest is not None:
            _check_embedder(name, manifest, embedder)
        record = store_record(kb_dir, manifest, new_backend=settings.store, new_uri=settings.store_uri)
        try:
            with busy_as(name):
                store = open_kb_store(kb_dir, record, dim=embedder.dim, token=settings.store_token,
                                      writer_lock=writer_lock_for(kb_dir))
        except DimensionMismatchError as exc:
            raise EmbedderMismatchError(f"knowledge base {name!r}: {exc}") from None
        try:
            if manifest is None:  # new, or built before manifests (its store's meta says how)
                manifest = manifest_from_store_meta(name, store.get_meta(), record.backend) or Manifest(
                    name, embedder.id, embedder.dim, make_splitter(settings).settings(), record,
                    parser_version=PARSER_VERSION, heading_prefix=settings.heading_prefix,
                )
                manifest = replace(manifest, store=record)
                _check_embedder(name, manifest, embedder)
            if not current:  # new, or older than this version writes
                write_manifest(kb_dir, manifest)
        except BaseException:
            store.close()
            raise
        return cls(name, kb_dir, store, embedder, settings, manifest)

    @classmethod
    def create(cls, settings: Settings, name: str, embedder: Embedder) -> KnowledgeBase:
        """Create an empty knowledge base; refuses a name already taken."""
        if exists(settings.kb_root / validate_name(name)):
            raise KBError(f"knowledge base {name!r} already exists (see `kb kb list`)")
        return cls.open(settings, name, embedder)

    def close(self) -> None:
        for index in self._keyword.values():
            index.close()
        self._keyword.clear()
        self.store.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def splitter_changed(self) -> bool:
        """True when the current chunk settings differ from those the knowledge base was built with."""
        return bool(self.chunk_settings_changed())

    def chunk_settings_changed(self) -> list[str]:
        """Names of the chunk settings (the splitter's, and the heading prefix) that differ from those
        the knowledge base was built with: chunks indexed from now on would not match the older ones."""
        built = {**self.manifest.splitter, "heading_prefix": self.manifest.heading_prefix}
        current = {**self.splitter.settings(), "heading_prefix": self.settings.heading_prefix}
        return sorted(k for k in built.keys() | current.keys() if built.get(k) != current.get(k))

    # -- reading -------------------------------------------------------------------------------

    def count(self) -> int:
        return int(self.store.count())

    def documents(self) -> list[DocumentInfo]:
        """One row per indexed file: chunks, pages, content hash, and why it is stale (if it is)."""
        docs: dict[str, dict[str, Any]] = {}
        for _id, payload in self.store.payloads():
            d = docs.setdefault(payload["source"], {"chunks": 0, "pages": set(), "hash": payload["doc_hash"]})
            d["chunks"] += 1
            if payload.get("page") is not None:
                d["pages"].add(payload["page"])
            d["stale"] = payload.get("stale") or ""
        return [DocumentInfo(src, d["chunks"], len(d["pages"]), d["hash"], d["stale"])
                for src, d in sorted(docs.items())]

    def documents_matching(self, paths: Iterable[str | Path]) -> list[str]:
        """The indexed documents that ``paths`` name (files, or all under a folder): what ``remove`` would remove."""
        return documents_under((p["source"] for _, p in self.store.payloads()), paths)[0]

    def search(self, query: str, k: int | None = None) -> list[Source]:
        """Dense retrieval only: the ``k`` chunks closest to ``query``, best first (score = cosine)."""
        hits = self.store.search(self.embedder.embed_query(query), k or self.settings.top_k)
        return [source_from_payload(h.id, h.score, h.payload) for h in hits]

    def keyword_index(self, choice: str | None = None) -> KeywordIndex:
        """The keyword index (``auto``/``jieba``/``milvus``; default from the settings), opened once."""
        choice = choice or self.settings.keyword_index
        if choice not in self._keyword:
            self._keyword[choice] = open_keyword_index(choice, self.store, self.directory, self.name)
        return self._keyword[choice]

    def retriever(self, settings: Settings | None = None, **overrides: Any) -> Retriever:
        """A retriever over this knowledge base as ``settings`` describe it (mode, threshold, keyword
        index, optional local reranker); keyword arguments override single options."""
        cfg = settings or self.settings
        options: dict[str, Any] = {"mode": cfg.retrieval_mode, "min_relevance": cfg.min_relevance,
                                   "fusion": cfg.fusion}
        if cfg.reranker_path is not None:
            from .reranker import load_reranker

            options["reranker"] = load_reranker(str(cfg.reranker_path))
        keyword = overrides.pop("keyword_index", None) or cfg.keyword_index
        options.update(overrides)
        return Retriever(self.store, self.embedder, self.keyword_index(keyword), **options)

    # -- writing -------------------------------------------------------------------------------

    @contextmanager
    def _locked(self, wait: float) -> Iterator[None]:
        """Hold the knowledge base's writer lock (shared with its store), waiting up to ``wait`` s."""
        with busy_as(self.name), self.store.writing(wait):
            yield

    @contextmanager
    def _writing(self, wait: float, progress: ProgressFn | None) -> Iterator[Indexer]:
        """One writing run: the lock held, an indexer handed this knowledge base's parts."""
        with self._locked(wait):
            cache = EmbedCache.open(self.directory / CACHE_FILE)
            try:
                limits = IndexLimits.from_settings(self.settings, self.stream_block_bytes)
                yield Indexer(self.store, self.embedder, self.splitter, cache, limits, name=self.name,
                              progress=progress)
            finally:
                cache.close()

    def index_paths(
        self, paths: Iterable[str | Path], *, progress: ProgressFn | None = None, prune: bool = False,
        wait: float = DEFAULT_WAIT, changed: bool = False, ignore: Callable[[Path], bool] | None = None,
    ) -> IndexReport:
        """Index files and folders incrementally: new and edited files are (re)embedded, unchanged ones
        skipped, renamed or moved ones re-pointed, unreadable ones reported while the rest go on.
        Files gone from an indexed folder are removed with ``prune``, else reported as missing.
        Another writer is waited for up to ``wait`` seconds (then ``KBBusyError``). ``changed`` and
        ``ignore``: a watcher's changed paths, at the cost of the change (see ``Indexer.index``)."""
        with self._writing(wait, progress) as ix:
            report = ix.index(paths, prune=prune, changed=changed, ignore=ignore)
            self._record_change(report)
        self._auto_gc(report, wait)
        self._keyword_catch_up(report)
        differ = self.chunk_settings_changed()
        if differ:
            report.notes.append(
                f"chunk settings ({', '.join(differ)}) differ from those {self.name!r} was built with; run "
                f"`kb rebuild --kb {self.name}` to re-split every document the same way"
            )
        return report

    def remove(self, paths: Iterable[str | Path], *, wait: float = DEFAULT_WAIT) -> IndexReport:
        """Delete the chunks of these files (or of every document under a folder) from the store."""
        with self._writing(wait, None) as ix:
            report = ix.remove(paths)
            self._record_change(report)
        self._auto_gc(report, wait)
        self._keyword_catch_up(report)
        return report

    def rebuild(
        self, *, progress: ProgressFn | None = None, prune: bool = False, wait: float = DEFAULT_WAIT
    ) -> IndexReport:
        """Re-read and re-split every recorded source with the current settings; cached embeddings
        are reused for chunk texts seen before. Each file is swapped in one step; the manifest then
        records the new chunk settings (splitter and heading prefix)."""
        with self._writing(wait, progress) as ix:
            report = ix.rebuild(prune=prune)
            stamp = now()
            self.manifest = replace(self.manifest, splitter=self.splitter.settings(), parser_version=PARSER_VERSION,
                                    heading_prefix=self.settings.heading_prefix, rebuilt=stamp, indexed=stamp)
            write_manifest(self.directory, self.manifest)
        return report

    def gc(self, *, wait: float = DEFAULT_WAIT, vacuum: bool = True) -> GcReport:
        """Prune the embedding cache of texts no document holds and compact the store (``kb gc``)."""
        with self._locked(wait):
            cache = EmbedCache.open(self.directory / CACHE_FILE)
            try:
                report = collect_garbage(self.name, self.store, cache, self.embedder.id, vacuum=vacuum)
            finally:
                cache.close()
            self.keyword_index().compact()  # the BM25 delta into a new segment
            return report

    def _auto_gc(self, report: IndexReport, wait: float) -> None:
        """After a large removal, prune by itself (the space is reused; ``kb gc`` also shrinks the file)."""
        removed = sum(o.chunks for o in report.by_status("removed"))
        if removed and worth_collecting(removed, self.count()):
            report.notes.append(self.gc(wait=wait, vacuum=False).summary())

    def _keyword_catch_up(self, report: IndexReport) -> None:
        """After a run that changed documents, the keyword index takes the change now, in the writer
        (``kb index``, ``kb watch``, an upload), not in the next user's search: a first sync tokenises
        every new chunk, and a full BM25 delta's merge took ~6 s at 100k chunks, ~1 min at 1M."""
        if self.settings.retrieval_mode != "dense" and any(o.status in CHANGES for o in report.outcomes):
            self.keyword_index().catch_up()

    def _record_change(self, report: IndexReport) -> None:
        """Note in the manifest when a run changed the documents (shown as "last indexed")."""
        if any(o.status in CHANGES for o in report.outcomes):
            self.manifest = replace(self.manifest, indexed=now())
            write_manifest(self.directory, self.manifest)

    def mark_synced(self, wait: float = DEFAULT_WAIT) -> None:
        """Record in the manifest that the documents are in step with their folders (``kb watch``);
        re-read under the lock, so fields another process wrote meanwhile are kept."""
        with self._locked(wait):
            current = load_manifest(self.directory)[0] or self.manifest
            self.manifest = replace(current, synced=now())
            write_manifest(self.directory, self.manifest)

    def set_store(self, record: StoreRecord) -> None:
        """Record that the knowledge base now lives in another store (``kb migrate``); reopen to use it."""
        with self._locked(0.0):
            self.manifest = replace(self.manifest, store=record)
            write_manifest(self.directory, self.manifest)


def make_splitter(settings: Settings) -> Splitter:
    """The splitter the settings describe (its ``settings()`` go into the manifest)."""
    from ingest import ChineseTextSplitter

    return ChineseTextSplitter(chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap)


def _check_embedder(name: str, manifest: Manifest, embedder: Embedder) -> None:
    if (manifest.embedder_id, manifest.embedder_dim) != (embedder.id, embedder.dim):
        raise EmbedderMismatchError(
            f"knowledge base {name!r} was built with embedder {manifest.embedder_id} (dim "
            f"{manifest.embedder_dim}), not {embedder.id} (dim {embedder.dim}): set KB_EMBEDDER back, or "
            "rebuild it into a new knowledge base"
        )
