"""From a file's chunks to store records: payloads, vectors through the embedding cache, and ids.

Apart from ``indexer.py`` (which files a run writes, and when) so that both of its write paths, the
batched small files and the streamed large ones, build records one way: the same payload, the same
cached embedding with its progress reports, the same id that collides with no other chunk.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from vectorstore import VectorStore

from ..embedders import Embedder
from ..types import IndexReport
from .embed_cache import EmbedCache, embed_with_cache
from .files import chunk_id
from .payload import chunk_payload, indexed_text
from .reading import IndexLimits

PROGRESS_EVERY = 4  # embedder batches between progress reports inside a large file


class ChunkRecords:
    """Builds one run's records. ``report`` counts the chunks embedded and those found in the cache;
    ``note`` reports progress inside a large file (``"path (embedded/total chunks)"``)."""

    def __init__(self, store: VectorStore, embedder: Embedder, cache: EmbedCache, limits: IndexLimits, *,
                 report: IndexReport, note: Callable[[str], None]) -> None:
        self.store = store
        self.embedder = embedder
        self.cache = cache
        self.limits = limits
        self.report = report
        self.note = note
        # Test hook: slows embedding so the crash test can kill a run part-way.
        self._delay = float(os.environ.get("KB_TEST_EMBED_DELAY") or 0)

    def payload(self, source: str, content_hash: str, chunk: Any) -> dict[str, Any]:
        return chunk_payload(source, content_hash, chunk, prefix_heading=self.limits.heading_prefix)

    def records(self, source: str, content_hash: str, chunks: list[Any], payloads: list[dict[str, Any]],
                vectors: np.ndarray) -> list[Any]:
        """The store records of one file's ``chunks`` (their ``payloads`` built once by the caller)."""
        from vectorstore import Record

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

    def embed(self, texts: list[str], label: str, *, before: int = 0, total: int = 0) -> np.ndarray:
        """Embed a large file's chunks a few batches at a time, reporting ``label (embedded/total chunks)``
        after each. Each embedder batch goes into the embedding cache as it is computed, while the file's
        chunks reach the store in one commit (readers see the whole file or none of it): a run stopped
        part-way keeps its work in the cache, and the next run embeds only the rest. ``before``/``total``:
        where these texts sit among a streamed file's chunks."""
        step = self.limits.batch_size * PROGRESS_EVERY
        if len(texts) <= step:
            return self._embed(texts)
        parts = []
        for start in range(0, len(texts), step):
            parts.append(self._embed(texts[start : start + step]))
            self.note(f"{label} ({before + start + len(parts[-1])}/{total or len(texts)} chunks)")
        return np.concatenate(parts)

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
