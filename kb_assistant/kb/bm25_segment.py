"""The read-optimised part of the BM25 index: an immutable segment of postings as numpy arrays.

A segment is a folder of ``.npy`` files (memory-mapped on open, never pickled): the vocabulary
sorted by code point (UTF-8 bytes + offsets), each term's postings as a slice of ``post_doc``
(positions into the sorted ``doc_ids``, ascending) and ``post_tf``, each document's length, and a
forward index (each document's term ids) for removals and ``terms_of``. A query reads only its terms'
slices and scores them vectorised: the SQLite postings scan it replaces cost 63 ms p50 at 100k chunks
and grew with the corpus (bench/bench_scale.py). Segments are never edited: a merge writes a new
folder, which the SQLite side then names in one commit (see ``bm25.BM25Index``); its arrays are built
by ``bm25_build`` (``Builder``, ``merge``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from bisect import bisect_left
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vectorstore.fsutil import fsync_dir

from .bm25_build import Builder, empty_arrays, merged_arrays

SEED_DOCS = 4096  # top_k: documents scored in full to start the threshold
# top_k's partial scores are summed in another order than the final ones: a margin far above rounding
# keeps every bound safe.
_MARGIN = 1e-9
ARRAYS = ("vocab_blob", "vocab_off", "ptr", "post_doc", "post_tf", "term_maxtf", "term_mindl",
          "doc_ids", "doc_len", "fwd_ptr", "fwd_tid")
FORMAT = 1


class SegmentError(Exception):
    """A segment's files are missing or inconsistent (the index is rebuilt from the store)."""


class Segment:
    """Arrays of one immutable segment (memory-mapped from its folder, or held in memory)."""

    def __init__(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        self.name = name
        self.a = {k: np.asarray(v) for k, v in arrays.items()}  # plain views: memmap indexing costs per call
        self.n = len(arrays["doc_ids"])
        self.vocab_size = len(arrays["ptr"]) - 1
        self._check()
        self.doc_len = self.a["doc_len"].astype(np.float64)  # 8 MB at 1M chunks: no conversion per query
        self._term_cache: dict[str, int] = {}

    @classmethod
    def empty(cls) -> Segment:
        return cls("", empty_arrays())

    @classmethod
    def load(cls, folder: Path) -> Segment:
        """Map a segment's files; SegmentError if any is missing or they do not fit together."""
        try:
            info = json.loads((folder / "segment.json").read_text(encoding="utf-8"))
            if info.get("format") != FORMAT:
                raise SegmentError(f"format {info.get('format')!r}, expected {FORMAT}")
            arrays = {k: np.load(folder / f"{k}.npy", mmap_mode="r", allow_pickle=False) for k in ARRAYS}
        except (OSError, ValueError, KeyError) as exc:
            raise SegmentError(str(exc)) from exc
        segment = cls(folder.name, arrays)
        if (segment.n, segment.vocab_size, len(arrays["post_doc"])) != (info["docs"], info["terms"], info["postings"]):
            raise SegmentError("array sizes differ from segment.json")
        return segment

    def _check(self) -> None:
        a = self.a
        v, n, p = self.vocab_size, self.n, len(a["post_doc"])
        shapes = [len(a["vocab_off"]) == v + 1, len(a["term_maxtf"]) == v, len(a["term_mindl"]) == v,
                  len(a["doc_len"]) == n, len(a["fwd_ptr"]) == n + 1, len(a["post_tf"]) == p,
                  len(a["fwd_tid"]) == p, int(a["ptr"][-1]) == p, int(a["fwd_ptr"][-1]) == p,
                  int(a["vocab_off"][-1]) == len(a["vocab_blob"])]
        if not all(shapes):
            raise SegmentError("arrays of inconsistent sizes")

    def save(self, folder: Path) -> None:
        """Write every array and ``segment.json`` under ``folder`` (new), each fsynced, then the folder."""
        folder.mkdir()
        for key in ARRAYS:
            _write_npy(folder / f"{key}.npy", np.ascontiguousarray(self.a[key]))
        info = {"format": FORMAT, "docs": self.n, "terms": self.vocab_size, "postings": len(self.a["post_doc"])}
        with open(folder / "segment.json", "w", encoding="utf-8") as fh:
            json.dump(info, fh)
            fh.flush()
            os.fsync(fh.fileno())
        fsync_dir(folder)
        fsync_dir(folder.parent)

    # -- lookups ----------------------------------------------------------------------------------

    def term(self, tid: int) -> str:
        off = self.a["vocab_off"]
        return bytes(self.a["vocab_blob"][int(off[tid]) : int(off[tid + 1])]).decode("utf-8")

    def term_id(self, term: str) -> int:
        """The term's id, or -1 if no segment document has it (binary search over the vocabulary)."""
        tid = self._term_cache.get(term)
        if tid is None:
            i = bisect_left(_Vocab(self), term)
            tid = i if i < self.vocab_size and self.term(i) == term else -1
            if len(self._term_cache) > 100_000:
                self._term_cache.clear()
            self._term_cache[term] = tid
        return tid

    def df(self, tid: int) -> int:
        return 0 if tid < 0 else int(self.a["ptr"][tid + 1] - self.a["ptr"][tid])

    def positions(self, ids: Sequence[int]) -> np.ndarray:
        """Each id's position in the segment, or -1."""
        doc_ids = self.a["doc_ids"]
        wanted = np.asarray(ids, dtype=np.int64)
        pos = np.searchsorted(doc_ids, wanted)
        found = pos < self.n
        found[found] = doc_ids[pos[found]] == wanted[found]
        return np.where(found, pos, -1)

    def doc_terms(self, pos: int) -> np.ndarray:
        return np.asarray(self.a["fwd_tid"][int(self.a["fwd_ptr"][pos]) : int(self.a["fwd_ptr"][pos + 1])])

    def postings(self, tid: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = int(self.a["ptr"][tid]), int(self.a["ptr"][tid + 1])
        return self.a["post_doc"][lo:hi], self.a["post_tf"][lo:hi]

    def vocab(self) -> list[str]:
        blob = bytes(self.a["vocab_blob"])
        off = self.a["vocab_off"].tolist()
        return [blob[off[i] : off[i + 1]].decode("utf-8") for i in range(self.vocab_size)]


def _write_npy(path: Path, arr: np.ndarray) -> None:
    """``np.save`` by hand, fsynced: its ``tofile`` reports a full disk as an OSError without errno,
    Python's own writes as ENOSPC/EFBIG, which the keyword index turns into its out-of-space path."""
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, np.lib.format.header_data_from_array_1_0(arr))
        flat = arr.reshape(-1).view(np.uint8) if arr.size else np.zeros(0, np.uint8)
        for start in range(0, len(flat), 16 << 20):
            fh.write(flat[start : start + (16 << 20)].data)
        fh.flush()
        os.fsync(fh.fileno())


class _Vocab(Sequence[str]):
    """The vocabulary as a sequence of strings, decoded on access (for ``bisect``)."""

    def __init__(self, segment: Segment) -> None:
        self._segment = segment

    def __len__(self) -> int:
        return self._segment.vocab_size

    def __getitem__(self, i):  # type: ignore[no-untyped-def, override]
        return self._segment.term(i)


def merge(old: Segment, alive: np.ndarray, new: Builder) -> Segment:
    """A segment of ``old``'s documents where ``alive`` (a bool per position) plus ``new``'s (whose
    ids must not be alive in ``old``; its postings are consumed): see ``bm25_build``."""
    return Segment("", merged_arrays(old, alive, new))


def remove_folders(directory: Path, prefix: str, keep: str | None) -> None:
    """Delete segment folders named ``prefix*`` other than ``keep`` (left by a merge that was
    replaced, or one a crash interrupted before it was published)."""
    for path in directory.glob(f"{prefix}*"):
        if path.is_dir() and path.name != keep:
            shutil.rmtree(path, ignore_errors=True)


def contributions(w: float, tf: np.ndarray, dl: np.ndarray, kp1: float, c: float, norm: float) -> np.ndarray:
    """One term's Okapi BM25 share for each posting, in float64 as SQLite computed it: one
    expression for every path (segment and delta) so that equal documents score bit for bit equal."""
    tf = tf.astype(np.float64)
    return (w * tf * kp1) / (tf + c + norm * dl.astype(np.float64, copy=False))


def top_k(segment: Segment, alive: np.ndarray, terms: list[tuple[int, float]], k: int, *, kp1: float, c: float,
          norm: float) -> list[tuple[int, float]]:
    """The ``k`` best ``(position, score)`` of ``alive`` documents for ``terms`` = ``[(term id, idf)]``
    in the query's (canonical) order, best first, ties by position (= by id).

    MaxScore, vectorised, exact. Each term's share is at most its bound, ``idf * (k1 + 1) * tf_max /
    (tf_max + k1 (1 - b) + norm * dl_min)``.
    1. The rarest terms' postings are scored in full, naming the candidates, until the k-th best
       candidate's partial score beats what the terms not yet scanned could add together: no unseen
       document can enter the top k, and the common terms' long postings are never scanned.
    2. The candidates whose partial score plus that rest cannot reach the k-th best are dropped; the
       other terms are looked up for the survivors only, one at a time, each dropping again those that
       can no longer reach it (a rare term names thousands of candidates at 1M chunks; a few dozen
       survive).
    3. The survivors' scores are summed again in the terms' order, as the delta's are, so equal
       documents score bit for bit equal wherever they live."""
    a = segment.a
    terms = [(tid, w) for tid, w in terms if tid >= 0]
    if not terms or k <= 0:
        return []
    dfs = [segment.df(tid) for tid, _ in terms]
    maxtf, mindl, doc_len = a["term_maxtf"], a["term_mindl"], segment.doc_len
    bounds = [w * kp1 * float(maxtf[tid]) / (float(maxtf[tid]) + c + norm * float(mindl[tid])) for tid, w in terms]
    rare_first = sorted(range(len(terms)), key=lambda i: dfs[i])
    partial = np.zeros(segment.n)
    seen = np.zeros(segment.n, bool)
    cand = np.zeros(0, dtype=a["post_doc"].dtype)
    # A lower bound of the k-th best final score: first the k-th best full score of the documents
    # that hold the rarest term (usually among the best), then of the candidates' partial scores.
    theta = _seed_threshold(segment, alive, terms, rare_first[0], k, kp1=kp1, c=c, norm=norm)
    scanned = 0
    while scanned < len(terms):  # 1. scan the rarest terms in full
        i = rare_first[scanned]
        scanned += 1
        tid, w = terms[i]
        docs, tfs = segment.postings(tid)
        partial[docs] += contributions(w, tfs, doc_len[docs], kp1, c, norm)
        fresh = docs[~seen[docs]]
        seen[fresh] = True
        rest = sum(bounds[j] for j in rare_first[scanned:])
        cand = np.concatenate([cand, fresh[alive[fresh]]])
        cand = cand[partial[cand] + rest >= theta * (1 - _MARGIN)]
        theta = max(theta, _kth(partial[cand], k))
        if theta * (1 - _MARGIN) > rest:
            break
    for s in range(scanned, len(terms) + 1):  # 2. the others, looked up for the candidates left
        rest = sum(bounds[j] for j in rare_first[s:])
        cand = cand[partial[cand] + rest >= theta * (1 - _MARGIN)]
        if s == len(terms):
            break
        tid, w = terms[rare_first[s]]
        docs, tfs = postings_among(segment, tid, cand)
        partial[docs] += contributions(w, tfs, doc_len[docs], kp1, c, norm)
        theta = max(theta, _kth(partial[cand], k))
    cand = np.sort(cand)  # 3. summed in the terms' order
    return _best(cand, _full_scores(segment, terms, cand, kp1=kp1, c=c, norm=norm), k)


def _full_scores(segment: Segment, terms: list[tuple[int, float]], docs: np.ndarray, *, kp1: float, c: float,
                 norm: float) -> np.ndarray:
    """The scores of the documents at the sorted positions ``docs``, each term's share added in the
    terms' order (as the delta sums them: equal documents score bit for bit equal)."""
    scores = np.zeros(len(docs))
    for tid, w in terms:
        hit, tfs = postings_among(segment, tid, docs)
        scores[np.searchsorted(docs, hit)] += contributions(w, tfs, segment.doc_len[hit], kp1, c, norm)
    return scores


def _seed_threshold(segment: Segment, alive: np.ndarray, terms: list[tuple[int, float]], rarest: int, k: int, *,
                    kp1: float, c: float, norm: float) -> float:
    """The k-th best full score among up to ``SEED_DOCS`` live documents holding the rarest term (those
    it scores best): any k documents' full scores bound the k-th best from below. -inf when fewer
    than k."""
    tid, w = terms[rarest]
    docs, tfs = segment.postings(tid)
    share = contributions(w, tfs, segment.doc_len[docs], kp1, c, norm)
    live = alive[docs]
    docs, share = docs[live], share[live]
    if len(docs) < k or SEED_DOCS < k:
        return -math.inf
    if len(docs) > SEED_DOCS:
        docs = np.sort(docs[np.argpartition(share, len(docs) - SEED_DOCS)[len(docs) - SEED_DOCS:]])
    return _kth(_full_scores(segment, terms, docs, kp1=kp1, c=c, norm=norm), k)


def _kth(scores: np.ndarray, k: int) -> float:
    """The k-th largest of ``scores``, or -inf when there are fewer."""
    return float(np.partition(scores, len(scores) - k)[len(scores) - k]) if len(scores) >= k else -math.inf


def postings_among(segment: Segment, tid: int, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The postings of term ``tid`` among the documents ``cand`` (positions, sorted or not): their
    positions and tfs. A pass over a short posting list costs less than a binary search per candidate."""
    docs, tfs = segment.postings(tid)
    if len(docs) < 8 * len(cand):
        member = np.zeros(segment.n, bool)
        member[cand] = True
        hit = member[docs]
        return docs[hit], tfs[hit]
    at = np.searchsorted(docs, cand)
    hit = at < len(docs)
    hit[hit] = docs[at[hit]] == cand[hit]
    return cand[hit], tfs[at[hit]]


def _best(positions: np.ndarray, scores: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The ``k`` best (position, score), best first, ties by lower position."""
    if len(scores) > k:
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        keep = scores >= kth
        positions, scores = positions[keep], scores[keep]
    order = np.lexsort((positions, -scores))[:k]
    return [(int(p), float(s)) for p, s in zip(positions[order], scores[order])]


def drop_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
