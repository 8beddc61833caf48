"""Vector-store backends end to end: insert throughput, query latency p50/p99, recall@10 vs exact.

Through the ``VectorStore`` seam, as the app uses them (payloads included, one ``batch()`` per
10,000 records): FAISS exact (``index_kind="flat"``), FAISS approximate (``index_kind="auto"``:
IVF from 100,000 vectors, nprobe 32, built by ``vectorstore.faiss_index``); ``faiss-flat-snap`` and
``faiss-auto-snap`` are the same with ``compact_ratio=0``, a full ``index.faiss`` snapshot every commit
(how the store persisted before its change log: run both to see commit cost vs store size), Milvus Lite (an
embedded ``.db``, FLAT index, IP metric; ``--milvus-index HNSW`` to try another) and, with
``--milvus-uri http://host:19530``, the same ``MilvusStore`` on a Milvus server (``milvus-server``;
e.g. ``.venv/bin/milvus-server --data DIR`` from the dev requirements, Milvus 2.3 standalone). Synthetic data:
normalised Gaussian-mixture vectors (clustered, like sentence embeddings), dimension 384; queries
are held-out points from the same clusters; the truth is an exact numpy search. Peak RSS is the process's
high-water mark while inserting (reset before each store; Linux), less its RSS before (the data arrays).
Inserts are also counted per CPU second of the process (all its threads): on a shared machine the wall
rate follows the load, the CPU rate follows the code.
Prints, asserts nothing; ``--json PATH`` also writes each (store, size)'s figures there (bench_big_folders.py
reads them).

    python bench/bench_stores.py [--sizes 100000,1000000] [--queries 200] [--stores faiss-flat,faiss-auto,milvus]
                                 [--json PATH]
    python bench/bench_stores.py --sizes 100000,300000 --stores faiss-auto-snap,faiss-auto   # log vs snapshots
    python bench/bench_stores.py --sizes 100000 --stores milvus,milvus-server --milvus-uri http://127.0.0.1:19530

2026-12-01, 2 shared cores under load (load average 4.5-6.3), ``--sizes 100000,1000000 --stores faiss-auto``,
niced: 100k 1,597 inserts/s wall (62.6 s), 27,284 per CPU second; 1M 2,216/s wall (451 s), 27,774 per CPU
second: 1M is x1.02 of 100k per CPU second, x1.39 on the wall (three runs that day gave x1.26, x0.19 and
x1.39 on the wall as the other workers' load came and went: 100k took 50 s, 9 s and 63 s). Peak RSS while
inserting, above the data: 429 MiB at 100k and 1,905 MiB at 1M (the index itself is 1.5 GB), down from
618 and 4,119 MiB before index.faiss was streamed to disk (it was serialised whole, then copied).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as kb_assistant sets it for the app (before faiss loads)

from vectorstore import Record, open_store  # noqa: E402

DIM = 384
K = 10
BATCH = 10_000
CHUNK = 100_000


def mixture(n: int, centers: np.ndarray, rng: np.random.Generator, spread: float = 0.6) -> np.ndarray:
    """``n`` normalised points around random ``centers``, built chunk by chunk in float32."""
    out = np.empty((n, centers.shape[1]), dtype=np.float32)
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        x = centers[rng.integers(0, len(centers), m)]
        x += rng.standard_normal((m, centers.shape[1]), dtype=np.float32) * np.float32(spread / np.sqrt(DIM))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[start : start + m] = x
    return out


def exact_top(data: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Ids (= row numbers) of the exact top-K by inner product."""
    best_s = np.full((len(queries), K), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), K), dtype=np.int64)
    for start in range(0, len(data), CHUNK):
        s = queries @ data[start : start + CHUNK].T
        i = np.broadcast_to(np.arange(start, start + s.shape[1]), s.shape)
        s, i = np.concatenate([best_s, s], 1), np.concatenate([best_i, i], 1)
        top = np.argsort(-s, axis=1)[:, :K]
        best_s, best_i = np.take_along_axis(s, top, 1), np.take_along_axis(i, top, 1)
    return best_i


def open_backend(name: str, directory: Path, args: argparse.Namespace) -> Any:
    if name in ("faiss-flat-snap", "faiss-auto-snap"):
        return open_store(directory, backend="faiss", dim=DIM, index_kind=name.split("-")[1], compact_ratio=0)
    if name == "faiss-flat":
        return open_store(directory, backend="faiss", dim=DIM, index_kind="flat")
    if name == "faiss-auto":
        return open_store(directory, backend="faiss", dim=DIM, index_kind="auto")
    if name == "milvus":
        return open_store(directory, backend="milvus", dim=DIM, index_type=args.milvus_index)
    if name == "milvus-server":
        if not args.milvus_uri:
            raise SystemExit("milvus-server needs --milvus-uri http://host:19530")
        return open_store(directory, backend="milvus", dim=DIM, index_type=args.milvus_index, uri=args.milvus_uri,
                          collection=f"bench_{directory.name.replace('-', '_')}")
    raise SystemExit(f"unknown store {name}")


def rss_mib(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak since the last reset) of this process, in MiB (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def reset_peak_rss() -> None:
    """Start a new peak-RSS window (Linux: writing 5 to clear_refs resets VmHWM to the current RSS)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def run_one(name: str, data: np.ndarray, queries: np.ndarray, truth: np.ndarray,
            args: argparse.Namespace) -> dict[str, Any]:
    """Insert ``data`` into a fresh store, then query it; prints one line and returns its figures."""
    directory = Path(tempfile.mkdtemp(prefix=f"bench-{name}-", dir=args.tmp))
    reset_peak_rss()
    rss_before = rss_mib("VmRSS")  # the data, queries and truth arrays: not the store's
    try:
        store = open_backend(name, directory, args)
        start = time.perf_counter()
        cpu_start = time.process_time()
        deadline = start + args.max_insert_s
        commits = []
        for lo in range(0, len(data), BATCH):
            hi = min(lo + BATCH, len(data))
            t = time.perf_counter()
            with store.batch():
                store.add([Record(i, data[i], {"source": f"doc{i // 50}.md", "i": i}) for i in range(lo, hi)])
            commits.append(time.perf_counter() - t)
            if time.perf_counter() > deadline and hi < len(data):
                rate = hi / (time.perf_counter() - start)
                print(f"{name:<15} n={len(data):>9,}  gave up inserting after {hi:,} records "
                      f"({rate:,.0f} rec/s; --max-insert-s {args.max_insert_s:.0f})", flush=True)
                store.close()
                return {"store": name, "n": len(data), "gave_up_after": hi, "insert_rate": rate}
        store.flush()
        insert_s = time.perf_counter() - start
        insert_cpu = time.process_time() - cpu_start
        insert_peak = rss_mib("VmHWM") - rss_before
        tail = len(commits) // 10 or 1  # the last 10% of commits: what one commit costs at full size
        last_rate = BATCH * tail / sum(commits[-tail:])
        median_rate = BATCH / float(np.median(commits[-tail:]))  # a typical commit there, rebuilds aside
        store.search(queries[0], K)  # warm caches (index load, server) outside the timings
        times, found = [], []
        for q in queries:
            t = time.perf_counter()
            hits = store.search(q, K)
            times.append((time.perf_counter() - t) * 1000)
            found.append([h.id for h in hits])
        p50, p99 = np.percentile(times, [50, 99])
        rec = np.mean([len(set(f) & set(t.tolist())) / K for f, t in zip(found, truth, strict=True)])
        count = store.count()
        store.close()
        print(
            f"{name:<15} n={len(data):>9,}  insert {len(data) / insert_s:>9,.0f} rec/s ({insert_s:6.1f} s, "
            f"{len(data) / insert_cpu:,.0f} rec per CPU s; "
            f"last 10% {last_rate:>7,.0f} rec/s, median commit {median_rate:>7,.0f} rec/s)  "
            f"p50 {p50:8.2f} ms  p99 {p99:8.2f} ms  recall@10 {rec:.4f}  count {count:,}  "
            f"peak RSS while inserting +{insert_peak:,.0f} MiB over the data",
            flush=True,
        )
        return {"store": name, "n": len(data), "insert_rate": len(data) / insert_s, "insert_s": insert_s,
                "insert_cpu_rate": len(data) / insert_cpu, "last_rate": last_rate, "median_rate": median_rate,
                "peak_rss_mib": insert_peak, "p50_ms": float(p50), "p99_ms": float(p99), "recall": float(rec),
                "count": count}
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        if name == "milvus-server":  # leave the server as it was
            from pymilvus import MilvusClient

            client = MilvusClient(uri=args.milvus_uri)
            for collection in client.list_collections():
                if collection.startswith(f"bench_{directory.name.replace('-', '_')}"):
                    client.drop_collection(collection)
            client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated store sizes")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--stores", default="faiss-flat,faiss-auto,milvus")
    parser.add_argument("--milvus-index", default="FLAT", help="Milvus index type (FLAT, HNSW, IVF_FLAT)")
    parser.add_argument("--milvus-uri", help="a Milvus server for the milvus-server store")
    parser.add_argument("--max-insert-s", type=float, default=1800, help="give up a store's insert after this")
    parser.add_argument("--tmp", default=None, help="where the stores are built (default: system temp)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file (a JSON list)")
    args = parser.parse_args()
    results = []
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((1000, DIM)).astype(np.float32)
    for n in (int(s) for s in args.sizes.split(",")):
        data = mixture(n, centers, rng)
        queries = mixture(args.queries, centers, rng)
        truth = exact_top(data, queries)
        print(f"-- n={n:,} dim={DIM} queries={args.queries} (one at a time) k={K}", flush=True)
        for name in args.stores.split(","):
            results.append(run_one(name, data, queries, truth, args))
            if args.json:  # after each store: a later failure leaves what was measured
                args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
