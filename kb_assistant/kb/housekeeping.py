"""Housekeeping (``kb gc``): drop cached embeddings of texts no document holds, compact the store.

The embedding cache keeps every chunk text ever embedded, so an edited or removed file leaves its old
vectors behind; the FAISS store keeps a change log beside its snapshot. Both are only ever extra: pruning
never loses a document, it only means a text removed and later added back is embedded again.
"""

from __future__ import annotations

from dataclasses import dataclass

from vectorstore import VectorStore

from .embed_cache import EmbedCache, text_key

# A run that removes at least this share of the chunks (and this many) prunes by itself afterwards.
AUTO_GC_SHARE = 0.2
AUTO_GC_MIN_CHUNKS = 1000


@dataclass(frozen=True)
class GcReport:
    """What one ``kb gc`` did to one knowledge base."""

    name: str
    cached_before: int
    cached_after: int
    bytes_before: int
    bytes_after: int

    def summary(self) -> str:
        freed = max(0, self.bytes_before - self.bytes_after) / 1024 / 1024
        return (f"{self.name}: embedding cache {self.cached_before:,} -> {self.cached_after:,} vectors "
                f"({self.cached_before - self.cached_after:,} unused removed, {freed:.1f} MB freed); "
                f"vector store compacted")


def collect_garbage(name: str, store: VectorStore, cache: EmbedCache, embedder_id: str, *, vacuum: bool) -> GcReport:
    """Prune ``cache`` to the texts ``store`` holds, then compact ``store`` (the caller holds the writer
    lock, so no indexing run adds to either meanwhile). ``vacuum`` also shrinks the cache's file."""
    before, size_before = cache.count(), cache.size_bytes()
    cache.prune(embedder_id, (text_key(p["text"]) for _, p in store.payloads()))
    if vacuum:
        cache.vacuum()
    store.compact()
    return GcReport(name, before, cache.count(), size_before, cache.size_bytes())


def worth_collecting(removed_chunks: int, remaining_chunks: int) -> bool:
    """Whether a run removed enough to prune by itself (a large removal, not a routine edit)."""
    total = removed_chunks + remaining_chunks
    return removed_chunks >= AUTO_GC_MIN_CHUNKS and removed_chunks >= AUTO_GC_SHARE * total
