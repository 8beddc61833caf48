"""Exact vs approximate FAISS search at scale: build time, recall@10, single-query latency, memory.

Synthetic data: a normalised Gaussian mixture (clustered, like sentence embeddings), generated in
float32 chunks. Queries are held-out points drawn near the same clusters. Both indexes are built by
``vectorstore.faiss_index.build_index`` (the store's own construction code): ``flat`` for the exact
baseline and ``auto`` for what the store would choose at this size.

    python bench/bench_ann.py [--n 1000000] [--quick] [--nprobe 8,16,32,64] [--hnsw]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vectorstore import faiss_index as fx  # noqa: E402

CHUNK = 100_000
K = 10


def mixture(n: int, centers: np.ndarray, rng: np.random.Generator, spread: float) -> np.ndarray:
    """``n`` normalised points around random ``centers``, built chunk by chunk in float32."""
    dim = centers.shape[1]
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        x = centers[rng.integers(0, len(centers), m)]
        x += rng.standard_normal((m, dim), dtype=np.float32) * np.float32(spread / np.sqrt(dim))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[start : start + m] = x
    return out


def index_bytes(index: Any) -> int:
    """Resident size of the vectors, ids and centroids an index holds (what serialisation stores)."""
    faiss = fx.import_faiss()
    n, d = int(index.ntotal), int(index.d)
    if fx.kind_of(index) == "ivf":
        return n * (d * 4 + 8) + int(faiss.extract_index_ivf(index).nlist) * d * 4
    if isinstance(index, faiss.IndexHNSW):
        return n * d * 4 + n * index.hnsw.nb_neighbors(0) * 4 + n * 8  # vectors + level-0 links (approx.)
    return n * (d * 4 + 8)


def latencies(index: Any, queries: np.ndarray) -> tuple[float, float]:
    """p50 and p99 milliseconds of one-query-at-a-time searches, as a user would issue them."""
    times = []
    for q in queries:
        start = time.perf_counter()
        fx.search(index, q[None, :], K)
        times.append((time.perf_counter() - start) * 1000)
    p50, p99 = np.percentile(times, [50, 99])
    return float(p50), float(p99)


def recall(truth: np.ndarray, found: np.ndarray) -> float:
    """Mean fraction of the true top-K found."""
    return float(np.mean([len(set(t) & set(f)) / K for t, f in zip(truth, found, strict=True)]))


def report(name: str, build_s: float, rec: float | None, lat: tuple[float, float], mem: int) -> None:
    rec_s = "   exact" if rec is None else f"{rec:8.4f}"
    print(
        f"{name:<24} build {build_s:7.1f} s  recall@10 {rec_s}  p50 {lat[0]:7.2f} ms  "
        f"p99 {lat[1]:7.2f} ms  memory {mem / 2**20:8.1f} MiB",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="stored vectors (default 1,000,000)")
    parser.add_argument("--quick", action="store_true", help="100,000 vectors")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--clusters", type=int, default=2000, help="mixture components")
    parser.add_argument("--spread", type=float, default=1.0, help="noise norm relative to a centre")
    parser.add_argument("--nprobe", default="", help="also report these nprobe values, e.g. 8,16,64")
    parser.add_argument("--hnsw", action="store_true", help="also build IndexHNSWFlat(M=32) to compare")
    args = parser.parse_args()
    n = 100_000 if args.quick else args.n
    faiss = fx.import_faiss()
    spec = fx.IndexSpec("auto")
    print(
        f"n={n:,} dim={args.dim} queries={args.queries} clusters={args.clusters} "
        f"threads={faiss.omp_get_max_threads()} faiss={faiss.__version__}"
    )
    print(
        f"store would choose: {spec.resolve(n)} (ann_threshold={spec.ann_threshold:,}, "
        f"nlist={fx.nlist_for(n)}, nprobe={spec.nprobe})",
        flush=True,
    )

    rng = np.random.default_rng(0)
    centers = rng.standard_normal((args.clusters, args.dim), dtype=np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    start = time.perf_counter()
    data = mixture(n, centers, rng, args.spread)
    queries = mixture(args.queries, centers, rng, args.spread)
    ids = np.arange(n, dtype=np.int64)
    print(f"generated in {time.perf_counter() - start:.1f} s", flush=True)

    start = time.perf_counter()
    exact = fx.build_index(fx.IndexSpec("flat"), args.dim, ids, data)
    exact_build = time.perf_counter() - start
    _, truth = exact.search(queries, K)  # batched (BLAS) for the ground truth
    report("exact flat", exact_build, None, latencies(exact, queries), index_bytes(exact))
    del exact

    start = time.perf_counter()
    approx = fx.build_index(spec, args.dim, ids, data)
    approx_build = time.perf_counter() - start
    _, found = fx.search(approx, queries, K)
    name = f"{fx.kind_of(approx)} nprobe={spec.nprobe}"
    report(name, approx_build, recall(truth, found), latencies(approx, queries), index_bytes(approx))
    if fx.kind_of(approx) == "ivf":
        for nprobe in [int(p) for p in args.nprobe.split(",") if p]:
            fx.configure(approx, fx.IndexSpec("auto", nprobe=nprobe))
            _, found = fx.search(approx, queries, K)
            report(
                f"ivf nprobe={nprobe}",
                approx_build,
                recall(truth, found),
                latencies(approx, queries),
                index_bytes(approx),
            )
        fx.configure(approx, spec)
        doomed = rng.choice(n, 1000, replace=False).astype(np.int64)
        start = time.perf_counter()
        approx.remove_ids(doomed)
        print(
            f"ivf remove_ids(1,000): {(time.perf_counter() - start) * 1000:.0f} ms, ntotal {n:,} -> {approx.ntotal:,}",
            flush=True,
        )
    del approx

    if args.hnsw:
        start = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(args.dim, 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 40
        hnsw.add(data)
        hnsw_build = time.perf_counter() - start
        hnsw.hnsw.efSearch = 64
        _, found = hnsw.search(queries, K)
        times = []
        for q in queries:
            t0 = time.perf_counter()
            hnsw.search(q[None, :], K)
            times.append((time.perf_counter() - t0) * 1000)
        lat = tuple(float(x) for x in np.percentile(times, [50, 99]))
        report("hnsw M=32 efSearch=64", hnsw_build, recall(truth, found), lat, index_bytes(hnsw))  # type: ignore[arg-type]
        print("hnsw cannot remove_ids: a deletion means rebuilding, i.e. the build time above", flush=True)


if __name__ == "__main__":
    main()
