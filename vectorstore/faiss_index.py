"""FAISS indexes: which kind for how many vectors, building, adding to and searching them (the files they
are cached in are ``faiss_snapshot``'s and ``faiss_log``'s)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import VectorStoreError

INDEX_KINDS = ("auto", "flat")  # what callers may ask for; the concrete kinds are "flat" and "ivf"

# Flat (exact) search costs ~n*dim flops per query: about 4 ms at 100k x 384 on one core, so exact
# stays below this many vectors and IVF takes over above it (txtai switches to IVF by size too).
DEFAULT_ANN_THRESHOLD = 100_000
# Inverted lists probed per query; recall@10 >= 0.95 on clustered 384-d data up to 1M vectors
# (bench/bench_ann.py). Raising it trades latency for recall.
DEFAULT_NPROBE = 32
# IVF lists: ~NLIST_PER_SQRT * sqrt(n) (FAISS guidance is 4-16 sqrt(n); fewer lists train faster on
# small machines and nprobe covers more of the data), with at least MIN_POINTS_PER_LIST per list.
NLIST_PER_SQRT = 1.0
MIN_POINTS_PER_LIST = 39  # below this FAISS k-means warns and centroids are poor
TRAIN_POINTS_PER_LIST = 64  # k-means runs on a sample of this many stored vectors per list
RETRAIN_GROWTH = 4  # retrain IVF once the store has grown this many times past its training size


def import_faiss() -> Any:
    """Import faiss lazily so the rest of kb-assistant works (and says what to do) without it."""
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise VectorStoreError(
            "the FAISS vector store needs the faiss package: pip install faiss-cpu"
        ) from exc
    return faiss


def resolve_kind(
    kind: str, n: int, *, threshold: int = DEFAULT_ANN_THRESHOLD, current: str | None = None
) -> str:
    """The concrete index kind (``flat`` or ``ivf``) for ``n`` vectors: the one place that chooses.

    ``flat`` is always exact. ``auto`` is flat below ``threshold`` vectors and IVF at or above it;
    an index that is already IVF (``current``) stays IVF until it shrinks below half the threshold,
    so a store hovering at the threshold is not rebuilt back and forth. The cache sidecar records
    the concrete kind, so a switch triggers a rebuild by itself.
    """
    if kind not in INDEX_KINDS:
        raise ValueError(f"unknown index_kind {kind!r}; choose one of {', '.join(INDEX_KINDS)}")
    if kind == "flat":
        return "flat"
    floor = threshold // 2 if current == "ivf" else threshold
    return "ivf" if n >= max(floor, 1) else "flat"


def nlist_for(n: int) -> int:
    """Number of IVF lists for ``n`` vectors."""
    return max(1, min(round(NLIST_PER_SQRT * math.sqrt(n)), n // MIN_POINTS_PER_LIST))


@dataclass(frozen=True)
class IndexSpec:
    """How the store wants its index: the requested kind and the approximate-search tuning.

    ``ann_threshold``: vector count from which ``auto`` uses IVF instead of exact search.
    ``nprobe``: IVF lists searched per query (recall vs latency); applied on build and on load.
    """

    kind: str = "auto"
    ann_threshold: int = DEFAULT_ANN_THRESHOLD
    nprobe: int = DEFAULT_NPROBE

    def __post_init__(self) -> None:
        resolve_kind(self.kind, 0)  # validates the kind
        if isinstance(self.ann_threshold, bool) or int(self.ann_threshold) < 1:
            raise ValueError(f"ann_threshold must be a positive vector count, got {self.ann_threshold!r}")
        if isinstance(self.nprobe, bool) or int(self.nprobe) < 1:
            raise ValueError(f"nprobe must be >= 1, got {self.nprobe!r}")

    def resolve(self, n: int, current: str | None = None) -> str:
        """The concrete kind for ``n`` vectors (see :func:`resolve_kind`)."""
        return resolve_kind(self.kind, n, threshold=int(self.ann_threshold), current=current)


def kind_of(index: Any) -> str:
    """The concrete kind of a built or loaded index."""
    faiss = import_faiss()
    return "ivf" if isinstance(faiss.downcast_index(index), faiss.IndexIVF) else "flat"


def index_params(index: Any) -> dict[str, int]:
    """The build and search parameters of ``index`` (recorded in the sidecar)."""
    if kind_of(index) != "ivf":
        return {}
    ivf = import_faiss().extract_index_ivf(index)
    return {"nlist": int(ivf.nlist), "nprobe": int(ivf.nprobe)}


def needs_rebuild(index: Any, spec: IndexSpec) -> bool:
    """True if ``index`` is no longer the kind ``spec`` wants at its size, or IVF has outgrown its lists."""
    current = kind_of(index)
    if spec.resolve(int(index.ntotal), current=current) != current:
        return True
    if current == "ivf":
        trained = import_faiss().extract_index_ivf(index).nlist
        return nlist_for(int(index.ntotal)) >= math.isqrt(RETRAIN_GROWTH) * trained
    return False


def configure(index: Any, spec: IndexSpec) -> Any:
    """Apply the search-time parameters of ``spec`` to ``index`` (returned for chaining)."""
    if kind_of(index) == "ivf":
        import_faiss().extract_index_ivf(index).nprobe = int(spec.nprobe)
    return index


def build_index(spec: IndexSpec | str, dim: int, ids: np.ndarray, vectors: np.ndarray) -> Any:
    """A fresh inner-product index holding ``vectors`` under ``ids``, of the kind ``spec`` wants.

    Flat is ``IndexIDMap2(IndexFlatIP)``. IVF is ``IndexIVFFlat`` (inner product, spherical
    k-means trained on a sample of ``vectors``), which stores ids itself; both support
    ``remove_ids``, so a deletion really removes the vector.
    """
    faiss = import_faiss()
    if isinstance(spec, str):
        spec = IndexSpec(spec)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    ids = np.asarray(ids, np.int64)
    if spec.resolve(len(ids)) == "flat":
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    else:
        nlist = nlist_for(len(ids))
        index = faiss.index_factory(dim, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
        sample = vectors
        if len(vectors) > nlist * TRAIN_POINTS_PER_LIST:
            rows = np.random.default_rng(0).choice(len(vectors), nlist * TRAIN_POINTS_PER_LIST, replace=False)
            sample = vectors[np.sort(rows)]
        index.train(sample)
        configure(index, spec)
    if len(ids):
        index.add_with_ids(vectors, ids)
    return index


def ivf_lists(index: Any, vectors: np.ndarray) -> np.ndarray | None:
    """The IVF list each vector goes to (None for a flat index). A commit computes it once and logs it,
    so replaying the log on open places the vectors without the coarse quantizer (at 1M vectors its
    search was 3 of the 5 seconds an open took)."""
    faiss = import_faiss()
    if not isinstance(faiss.downcast_index(index), faiss.IndexIVF):
        return None
    return np.ascontiguousarray(index.quantizer.assign(vectors, 1).ravel(), dtype=np.int64)


def add_vectors(index: Any, vectors: np.ndarray, ids: np.ndarray, lists: np.ndarray | None = None) -> None:
    """Add ``vectors`` under ``ids``; into the given IVF ``lists`` when known (``ivf_lists``' answer for
    this index's centroids), else wherever the index puts them."""
    if lists is None:
        index.add_with_ids(vectors, ids)
        return
    faiss = import_faiss()
    ivf = faiss.downcast_index(index)
    lists = np.ascontiguousarray(lists, dtype=np.int64)
    if not isinstance(ivf, faiss.IndexIVF) or len(lists) != len(ids) or (
            len(lists) and (lists.min() < 0 or lists.max() >= ivf.nlist)):
        raise ValueError("IVF list numbers that do not fit this index")
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    i = np.ascontiguousarray(ids, dtype=np.int64)
    ivf.add_core(len(x), faiss.swig_ptr(x), faiss.swig_ptr(i), faiss.swig_ptr(lists))


def search(index: Any, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[Any, Any]:
    """``index.search`` limited to the ids in ``allowed`` (all when None): ``(scores, labels)``.

    Callers pass ``k <= `` the number of searchable vectors. If the probed IVF lists hold fewer
    than ``k`` of them (a selective filter, or lists thinned by deletions) that row is searched
    again over every list, which is exact, so a filter never silently returns too few hits.
    """
    faiss = import_faiss()
    sel = None if allowed is None else faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
    if kind_of(index) != "ivf":
        return index.search(queries, k, params=None if sel is None else faiss.SearchParameters(sel=sel))
    ivf = faiss.extract_index_ivf(index)
    scores, labels = index.search(queries, k, params=faiss.SearchParametersIVF(sel=sel, nprobe=ivf.nprobe))
    short = (labels < 0).any(axis=1)
    if short.any() and ivf.nprobe < ivf.nlist:
        params = faiss.SearchParametersIVF(sel=sel, nprobe=ivf.nlist)
        scores[short], labels[short] = index.search(np.ascontiguousarray(queries[short]), k, params=params)
    return scores, labels


def index_ids(index: Any) -> np.ndarray:
    """The external ids held by the index (diagnostics and tests)."""
    faiss = import_faiss()
    if kind_of(index) != "ivf":
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    invlists = faiss.extract_index_ivf(index).invlists
    parts = [
        faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
        for i in range(invlists.nlist)
        if invlists.list_size(i)
    ]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
