"""Move a knowledge base to another vector store (e.g. FAISS -> Milvus) by copying, not re-embedding."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import KBError
from ..settings import Settings

ProgressFn = Callable[[int, int], None]
"""Called as ``progress(copied, total)``."""

COPY_BATCH = 1000
# Store-managed meta that must not be copied as caller meta.
_NOT_COPIED = frozenset({"dim", "generation", "index_kind"})


class MigrationError(KBError):
    """The copy could not be made or did not verify; the knowledge base still uses its old store."""


@dataclass(frozen=True)
class MigrationReport:
    kb: str
    uri: str
    collection: str
    source_count: int
    target_count: int
    sampled: int
    matching: int  # sampled queries whose top-k agree between the stores
    seconds: float
    switched: bool

    @property
    def ok(self) -> bool:
        return self.source_count == self.target_count and self.matching == self.sampled

    def summary(self) -> str:
        lines = [
            f"{self.kb}: copied {self.target_count}/{self.source_count} records to collection "
            f"{self.collection!r} at {self.uri} in {self.seconds:.1f} s",
            f"verified: counts {'equal' if self.source_count == self.target_count else 'DIFFER'}, "
            f"{self.matching}/{self.sampled} sample searches return the same top results",
        ]
        if self.switched:
            lines.append(f"{self.kb} now uses this store; the old one is left in place as a backup")
        elif self.ok:
            lines.append(f"{self.kb} still uses its old store (--copy-only)")
        return "\n".join(lines)


def copy_store(src: Any, dst: Any, *, progress: ProgressFn | None = None) -> int:
    """Copy every record (id, vector, payload) and the caller meta of ``src`` into the empty ``dst``.

    One ``dst.batch()``: a failure part-way leaves ``dst`` as it was. Returns records copied.
    """
    if dst.dim != src.dim:
        raise MigrationError(f"the target store holds dim={dst.dim} vectors, the knowledge base dim={src.dim}")
    existing = dst.count()
    if existing:
        raise MigrationError(
            f"the target already holds {existing} records; migrate into a new collection (--collection) "
            "or an empty store"
        )
    ids = src.ids()
    meta = {k: v for k, v in src.get_meta().items() if k not in _NOT_COPIED}
    with dst.batch():
        for start in range(0, len(ids), COPY_BATCH):
            records = [r for r in src.get(ids[start : start + COPY_BATCH]) if r is not None]
            dst.add(records)
            if progress:
                progress(min(start + COPY_BATCH, len(ids)), len(ids))
        if meta:
            dst.set_meta(**meta)
    return len(ids)


def compare_searches(src: Any, dst: Any, *, sample: int = 20, k: int = 10, seed: int = 0) -> tuple[int, int]:
    """Use ``sample`` stored vectors as queries on both stores: ``(sampled, matching)``.

    A query matches when both return the same ids in the same order, or the same scores (equal
    scores may legitimately come back in another order, e.g. for duplicate chunks).
    """
    ids = src.ids()
    if not ids:
        return 0, 0
    rng = np.random.default_rng(seed)
    chosen = sorted(int(i) for i in rng.choice(ids, size=min(sample, len(ids)), replace=False))
    queries = src.vectors(chosen)
    matching = 0
    for a, b in zip(src.search_many(queries, k), dst.search_many(queries, k), strict=True):
        same_ids = [h.id for h in a] == [h.id for h in b]
        same_scores = len(a) == len(b) and np.allclose([h.score for h in a], [h.score for h in b], atol=1e-4)
        matching += same_ids or same_scores
    return len(chosen), matching


def migrate_kb(
    settings: Settings,
    name: str,
    uri: str,
    *,
    token: str | None = None,
    collection: str | None = None,
    switch: bool = True,
    sample: int = 20,
    progress: ProgressFn | None = None,
) -> MigrationReport:
    """Copy knowledge base ``name`` to the Milvus store at ``uri``, verify it, and (``switch``) make
    the knowledge base use it by recording the new location in its manifest.
    """
    from vectorstore import VectorStoreError
    from vectorstore.milvus_store import MilvusStore, default_collection

    from ..app import open_kb
    from .manifest import STORE_DIR, StoreRecord
    from .payload import indexed_text

    started = time.perf_counter()
    with open_kb(settings, name, create=False) as kb:
        src = kb.store
        collection = collection or default_collection(kb.directory / STORE_DIR)
        try:
            dst = MilvusStore.open(None, uri=uri, token=token, collection=collection, dim=src.dim, full_text=None,
                                   full_text_of=indexed_text)
            try:
                copy_store(src, dst, progress=progress)
                dst.flush()
                source_count, target_count = src.count(), dst.count()
                sampled, matching = compare_searches(src, dst, sample=sample)
                target_uri = dst.uri
            finally:
                dst.close()
        except VectorStoreError as exc:
            raise MigrationError(f"migration of {name!r} failed: {exc}") from exc
        report = MigrationReport(
            name, target_uri, collection, source_count, target_count, sampled, matching,
            time.perf_counter() - started, switched=False,
        )
        if not report.ok:
            raise MigrationError(
                report.summary() + f"\nverification failed: {name} still uses its old store; "
                f"drop collection {collection!r} before retrying"
            )
        if switch:
            kb.set_store(StoreRecord("milvus", target_uri, collection))
            report = MigrationReport(**{**vars(report), "switched": True})
    return report
