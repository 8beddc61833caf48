"""BM25 segment build and merge: seconds and peak RSS of the legacy build (64-bit ``term * n + position``
keys, argsort, ``np.insert``; copied below, unchanged) against ``bm25_build`` (transposes, blockwise
merge), in the same run, with a check that both write identical arrays.

Postings are synthetic but shaped like the keyword index's at scale (bench/bench_scale.py: ~200 postings
per chunk from jieba on 300-500-character Chinese chunks): each document draws 180-300 tokens from a
Zipf law (exponent 1) over a 500,000-term vocabulary of two-character CJK terms, so its distinct terms
arrive sorted by code point with their counts, as ``BM25Index`` hands them to the ``Builder``. The
documents are generated once per size into raw files; each build runs in a child process that reads
them straight into its ``Builder`` (the fill is not timed: both builders are filled alike, and a
real first sync spends its time tokenising), then times ``merge(Segment.empty(), ...)`` (what
``BM25Index.rebuild`` and a bulk ``add`` run) and reports its own peak RSS (VmHWM: the Builder's
arrays included, as in the index). The merge child maps the largest size's saved segment, removes
2,500 documents and merges a 5,000-document delta (2,500 of those ids re-added, 2,500 new ones,
out of id order): what a full SQLite delta's merge does. Its peak RSS counts the mapped segment's
pages it reads. Below 10,000 documents the delta shrinks with the segment (a quarter of it removed,
as many re-added and as many new), so small sizes run too.

    python bench/bench_segment_build.py [--sizes 100000,1000000] [--order asc|random] [--root /tmp]

Ids ascend in the order documents are added with ``--order asc`` (the store's order, as bench_scale
builds, and as the keyword sync passes them: ``store.get(sorted(...))``); ``random`` shuffles them
(hash ids), which costs the new build a reordering copy (its peak unchanged: the Builder's arrays are
freed before the transpose).

Figures, 1 December 2026, the 2-core dev machine shared with other jobs (load ~3.5). Run A:
``--sizes 100000,1000000``; run B: ``--sizes 1000000 --order random``; run C: ``--sizes 100000 --order
random``. Build = ``merge`` into an empty segment (the save after it not included: 1-5 s, fsync-bound
and noisy, 0.16-0.67 s for the same 245 MB array in one process); peak RSS of the child (its filled
Builder alone: ~300 MiB at 100k, ~1.7 GiB at 1M, about the same for both). The merge child's peak
counts the pages of the 1M segment it maps and reads (~1.2 GiB of postings, page cache).

| run, documents, ids | legacy build | new build | legacy peak RSS | new peak RSS | arrays |
|---|---|---|---|---|---|
| A 100k asc | 10.5 s | 1.9 s | 1,104 MiB | 487 MiB | identical |
| C 100k random | 6.3 s | 2.1 s | 1,093 MiB | 489 MiB | identical |
| A 1M asc | 73.6 s | 17.0 s | 7,293 MiB | 2,925 MiB | identical |
| B 1M random | 62.5 s | 10.2 s | 7,283 MiB | 2,924 MiB | identical |
| C merge 5,000 into 100k | 6.6 s | 2.0 s | 1,388 MiB | 760 MiB | identical |
| A merge 5,000 into 1M | 45.5 s | 10.5 s | 9,307 MiB | 4,614 MiB | identical |
| B merge 5,000 into 1M | 38.8 s | 11.3 s | 9,278 MiB | 4,615 MiB | identical |

- 204 postings per document (200M at 1M), as bench_scale's jieba chunks. The legacy build's peak is
  its int64 keys, their argsort and the forward index's argsort (1.6 GB each at 1M); the new one's is
  the Builder's arrays plus the transposed postings (int32 positions, uint16 tf: 1.2 GB at 1M), then
  the postings plus the forward index's transpose. bench_scale's 9.6 GB (11.2 GB with a merge) at 1M
  was this build in a process that also held the rest of the knowledge base (FAISS index, token cache).
- Merge: the new one keeps the old segment's postings and merges each block of terms (4M postings)
  with the new ones; the legacy one built 64-bit keys for all of them and ``np.insert``-ed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from array import array
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_scale import peak_rss_mib  # noqa: E402  (this folder: the script's own)

from kb_assistant.kb import bm25_segment  # noqa: E402
from kb_assistant.kb.bm25_segment import ARRAYS, Segment  # noqa: E402

VOCAB = 500_000
SEED = 15
GEN_BLOCK = 20_000  # documents generated at a time
DELTA = 5_000  # documents merged into the largest size, half of them re-added ids (fewer below 10,000 documents)
MIN_SIZE = 4  # the merge removes a quarter of the documents: at least one


# -- LEGACY: the segment build as it was before bm25_build (kb_assistant/kb/bm25_segment.py at 2229ba4),
# -- kept unchanged as this bench's baseline. Do not use elsewhere.

class LegacyBuilder:
    """Documents to put in a segment: ``(id, {term: tf}, length)`` kept compact until the merge."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self.ids = array("q")
        self.lengths = array("q")
        self.counts = array("q")  # distinct terms per document
        self.tids = array("i")  # int32: 200M postings at 1M chunks
        self.tfs = array("i")

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, rid: int, tfs: Iterable[tuple[str, int]], length: int) -> None:
        vocab = self.vocab
        before = len(self.tids)
        for term, tf in tfs:
            tid = vocab.get(term)
            if tid is None:
                tid = vocab[term] = len(vocab)
            self.tids.append(tid)
            self.tfs.append(tf)
        self.ids.append(rid)
        self.lengths.append(length)
        self.counts.append(len(self.tids) - before)


def legacy_merge(old: Segment, alive: np.ndarray, new: LegacyBuilder) -> Segment:
    """A segment of ``old``'s documents where ``alive`` (a bool per position) plus ``new``'s (whose
    ids must not be alive in ``old``; its postings are consumed). ``old``'s postings are already
    ordered by (term, id) and the remaps below keep that order, so only ``new``'s are sorted, then
    inserted."""
    old_vocab = old.vocab()
    new_terms = sorted(new.vocab)
    vocab = sorted(set(old_vocab).union(new_terms))
    index = {t: i for i, t in enumerate(vocab)}
    old_remap = np.array([index[t] for t in old_vocab], dtype=np.int64)
    new_remap = np.zeros(len(new.vocab), dtype=np.int64)
    for term, local in new.vocab.items():
        new_remap[local] = index[term]

    keep_docs = np.flatnonzero(alive)
    new_ids = np.frombuffer(new.ids, dtype=np.int64) if len(new) else np.zeros(0, np.int64)
    doc_ids = np.concatenate([np.asarray(old.a["doc_ids"])[keep_docs], new_ids])
    order = np.argsort(doc_ids, kind="stable")
    doc_ids = doc_ids[order]
    if len(doc_ids) > 1 and not np.all(doc_ids[1:] > doc_ids[:-1]):
        raise ValueError("a merged id is both in the segment and among the new documents")
    doc_len = np.concatenate([np.asarray(old.a["doc_len"])[keep_docs],
                              np.frombuffer(new.lengths, dtype=np.int64) if len(new) else np.zeros(0, np.int64)])[order]
    n = len(doc_ids)
    old_pos = np.full(old.n, -1, dtype=np.int64)
    old_pos[keep_docs] = np.searchsorted(doc_ids, np.asarray(old.a["doc_ids"])[keep_docs])

    # Old postings, filtered and remapped: still ordered by (term, position).
    post_doc_old = np.asarray(old.a["post_doc"])
    live = alive[post_doc_old] if len(post_doc_old) else np.zeros(0, bool)
    old_keys = np.repeat(old_remap, np.diff(np.asarray(old.a["ptr"])))[live] * n + old_pos[post_doc_old[live]]
    old_tf = np.asarray(old.a["post_tf"])[live].astype(np.int64)
    del live, post_doc_old
    # New postings: each document's position, then sorted by (term, position).
    counts = np.frombuffer(new.counts, dtype=np.int64) if len(new) else np.zeros(0, np.int64)
    new_doc_pos = np.searchsorted(doc_ids, new_ids)
    new_keys = new_remap[np.frombuffer(new.tids, dtype=np.int32)] if len(new.tids) else np.zeros(0, np.int64)
    new_keys *= n
    new_keys += np.repeat(new_doc_pos, counts)
    sort = np.argsort(new_keys)
    new_keys = new_keys[sort]
    new_tf = np.frombuffer(new.tfs, dtype=np.int32)[sort] if len(sort) else np.zeros(0, np.int32)
    del sort
    new.tids, new.tfs = array("i"), array("i")  # consumed: 1.6 GB at 1M chunks
    if len(old_keys):
        at = np.searchsorted(old_keys, new_keys)
        keys = np.insert(old_keys, at, new_keys)
        tf = np.insert(old_tf, at, new_tf.astype(np.int64))
        del at
    else:
        keys, tf = new_keys, new_tf
    del old_keys, old_tf, new_keys, new_tf
    pos = (keys % max(n, 1)).astype(np.int32)
    keys //= max(n, 1)
    return Segment("", legacy_finish(keys, pos, vocab, doc_ids, doc_len, tf))


def legacy_finish(term_of: np.ndarray, pos: np.ndarray, vocab: list[str], doc_ids: np.ndarray, doc_len: np.ndarray,
            tf: np.ndarray) -> dict[str, np.ndarray]:
    """The arrays of a segment from its postings ordered by (term, position); terms left without a
    posting (their documents all removed) are dropped from the vocabulary."""
    df = np.bincount(term_of, minlength=len(vocab)) if len(vocab) else np.zeros(0, np.int64)
    used = np.flatnonzero(df)
    if len(used) < len(vocab):
        remap = np.cumsum(df > 0) - 1
        term_of = remap[term_of]
        vocab = [vocab[i] for i in used]
        df = df[used]
    ptr = np.concatenate([[0], np.cumsum(df)]).astype(np.int64)
    encoded = [t.encode("utf-8") for t in vocab]
    vocab_off = np.concatenate([[0], np.cumsum([len(e) for e in encoded])]).astype(np.int64)
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    doc_len = doc_len.astype(np.int32 if len(doc_len) == 0 or doc_len.max() < 2**31 else np.int64)
    post_dl = doc_len[pos]
    starts = ptr[:-1]
    tf_type = np.uint16 if len(tf) == 0 or tf.max() < 2**16 else np.int64
    term_maxtf = np.maximum.reduceat(tf, starts) if len(starts) else np.zeros(0, np.int64)
    term_mindl = np.minimum.reduceat(post_dl, starts) if len(starts) else np.zeros(0, np.int64)
    del post_dl
    pos32 = pos.astype(np.int32, copy=False)
    fwd_order = np.argsort(pos32, kind="stable")  # by position, each document's terms ascending
    fwd_tid = term_of[fwd_order].astype(np.int32)
    del fwd_order
    fwd_ptr = np.concatenate([[0], np.cumsum(np.bincount(pos32, minlength=len(doc_ids)))]).astype(np.int64)
    return {"vocab_blob": blob, "vocab_off": vocab_off, "ptr": ptr, "post_doc": pos32,
            "post_tf": tf.astype(tf_type), "term_maxtf": term_maxtf.astype(np.int64),
            "term_mindl": term_mindl.astype(np.int64), "doc_ids": doc_ids.astype(np.int64), "doc_len": doc_len,
            "fwd_ptr": fwd_ptr, "fwd_tid": fwd_tid}


# -- the bench ------------------------------------------------------------------------------------

def names() -> list[str]:
    """Term strings by Zipf rank: two CJK characters, so code-point order is not rank order."""
    perm = np.random.default_rng(SEED).permutation(VOCAB).tolist()
    return [chr(0x4E00 + p % 20_000) + chr(0x4E00 + p // 20_000) for p in perm]


def generate(folder: Path, ids: np.ndarray, seed: int) -> float:
    """Documents with the given ids (in this order) as raw arrays under ``folder``; postings per document."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    terms = names()
    str_rank = np.empty(VOCAB, np.int64)
    str_rank[np.argsort(np.array(terms))] = np.arange(VOCAB)
    rank_of = np.argsort(str_rank)
    cdf = np.cumsum(1.0 / (np.arange(VOCAB) + 2.7))
    cdf /= cdf[-1]
    files = {k: open(folder / f"{k}.bin", "wb") for k in ("tids", "tfs", "counts", "lengths")}
    postings = 0
    for start in range(0, len(ids), GEN_BLOCK):
        m = len(ids[start : start + GEN_BLOCK])
        k = rng.integers(180, 301, m)
        doc = np.repeat(np.arange(m), k)
        rank = np.minimum(np.searchsorted(cdf, rng.random(len(doc))), VOCAB - 1)
        keys, tf = np.unique(doc * VOCAB + str_rank[rank], return_counts=True)
        files["tids"].write(rank_of[keys % VOCAB].astype(np.int32).tobytes())
        files["tfs"].write(tf.astype(np.uint16).tobytes())
        files["counts"].write(np.bincount(keys // VOCAB, minlength=m).astype(np.int64).tobytes())
        files["lengths"].write(k.astype(np.int64).tobytes())
        postings += len(keys)
    for fh in files.values():
        fh.close()
    ids.astype(np.int64).tofile(folder / "ids.bin")
    return postings / max(len(ids), 1)


def fill(builder: Any, folder: Path, legacy: bool) -> None:
    """The documents under ``folder`` into ``builder``, as ``Builder.add`` would leave it."""
    builder.vocab = {t: i for i, t in enumerate(names())}
    for key, code in (("ids", "q"), ("lengths", "q"), ("counts", "q"), ("tids", "i")):
        values = array(code)
        with open(folder / f"{key}.bin", "rb") as fh:
            values.fromfile(fh, (folder / f"{key}.bin").stat().st_size // values.itemsize)
        setattr(builder, key, values)
    tfs, dtype = (array("i"), np.int32) if legacy else (array("H"), np.uint16)  # each Builder's own typecode
    with open(folder / "tfs.bin", "rb") as fh:
        while chunk := fh.read(1 << 24):
            tfs.frombytes(np.frombuffer(chunk, np.uint16).astype(dtype).tobytes())
    builder.tfs = tfs


def child(args: argparse.Namespace) -> dict[str, Any]:
    legacy = args.child == "legacy"
    builder = LegacyBuilder() if legacy else bm25_segment.Builder()
    merge = legacy_merge if legacy else bm25_segment.merge
    t = time.perf_counter()
    fill(builder, args.data, legacy)
    out: dict[str, Any] = {"fill_s": time.perf_counter() - t, "filled_mib": peak_rss_mib()}
    if args.base:  # a merge into a saved segment
        old = Segment.load(args.base)
        dead = np.load(args.data / "dead.npy")
        alive = np.ones(old.n, bool)
        alive[old.positions(dead.tolist())] = False
    else:
        old, alive = Segment.empty(), np.zeros(0, bool)
    t = time.perf_counter()
    segment = merge(old, alive, builder)  # type: ignore[arg-type]
    out["seconds"] = time.perf_counter() - t
    out["peak_mib"] = peak_rss_mib()
    out["postings"] = len(segment.a["post_doc"])
    t = time.perf_counter()
    segment.save(args.out)
    out["save_s"] = time.perf_counter() - t
    return out


def run_child(impl: str, data: Path, out: Path, base: Path | None = None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", impl, "--data", str(data), "--out", str(out)]
    cmd += ["--base", str(base)] if base else []
    proc = subprocess.run(cmd, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        sys.exit(f"the {impl} child on {data} failed (exit {proc.returncode})")
    return dict(json.loads(lines[-1][len("RESULT "):]))


def identical(a: Path, b: Path) -> bool:
    """Both segment folders hold the same arrays (dtype and values), compared a slice at a time."""
    for key in ARRAYS:
        x = np.load(a / f"{key}.npy", mmap_mode="r")
        y = np.load(b / f"{key}.npy", mmap_mode="r")
        if x.dtype != y.dtype or x.shape != y.shape:
            return False
        for s in range(0, len(x), 1 << 24):
            if not np.array_equal(x[s : s + (1 << 24)], y[s : s + (1 << 24)]):
                return False
    return True


def line(label: str, r: dict[str, Any], base: dict[str, Any] | None) -> str:
    vs = f"  ({r['seconds'] / base['seconds']:.2f}x time, {r['peak_mib'] / base['peak_mib']:.2f}x RSS)" if base else ""
    return (f"  {label:<7} {r['seconds']:8.1f} s  peak RSS {r['peak_mib']:8,.0f} MiB  (builder filled: "
            f"{r['filled_mib']:,.0f} MiB; save {r['save_s']:.1f} s){vs}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--order", choices=("asc", "random"), default="asc")
    ap.add_argument("--root", type=Path, default=Path("/tmp"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--base", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args)), flush=True)
        return
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < MIN_SIZE:
        sys.exit(f"--sizes wants document counts of at least {MIN_SIZE} separated by commas, e.g. 1000,100000; "
                 f"got {args.sizes!r}")
    work = args.root / f"bench_segment_build.{os.getpid()}"
    ok = True
    try:
        for n in sizes:
            rng = np.random.default_rng(SEED + n)
            ids = np.arange(n, dtype=np.int64) * 4
            order = ids if args.order == "asc" else ids[rng.permutation(n)]
            per_doc = generate(work / f"docs-{n}", order, SEED + n)
            print(f"\n== {n:,} documents, {per_doc:.0f} postings each ({args.order} ids): build (merge into an "
                  "empty segment)", flush=True)
            results = {}
            for impl in ("legacy", "new"):
                results[impl] = run_child(impl, work / f"docs-{n}", work / f"{impl}-{n}")
                print(line(impl, results[impl], results.get("legacy") if impl == "new" else None), flush=True)
            same = identical(work / f"legacy-{n}", work / f"new-{n}")
            ok &= same
            print(f"  arrays identical: {same}", flush=True)
            if n != sizes[-1]:
                continue
            removed = min(DELTA // 2, n // 4)
            dead = rng.choice(ids, removed, replace=False)
            fresh = rng.choice(n, removed, replace=False) * 4 + 1
            delta = np.concatenate([dead, fresh])[rng.permutation(2 * removed)]
            generate(work / "delta", delta, SEED + 1)
            np.save(work / "delta" / "dead.npy", dead)
            print(f"== merge: {removed:,} removed, {2 * removed:,} added ({removed:,} re-added) into the "
                  f"{n:,}-document segment", flush=True)
            merged = {}
            for impl in ("legacy", "new"):
                merged[impl] = run_child(impl, work / "delta", work / f"{impl}-merged", base=work / f"new-{n}")
                print(line(impl, merged[impl], merged.get("legacy") if impl == "new" else None), flush=True)
            same = identical(work / "legacy-merged", work / "new-merged")
            ok &= same
            print(f"  arrays identical: {same}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not ok:
        sys.exit("the new build's arrays differ from the legacy build's")


if __name__ == "__main__":
    main()
