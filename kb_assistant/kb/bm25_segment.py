"""The read-optimised part of the BM25 index: an immutable segment of postings as numpy arrays.

A segment is a folder of ``.npy`` files (memory-mapped on open, never pickled): the vocabulary
sorted by code point (UTF-8 bytes + offsets), each term's postings as a slice of ``post_doc``
(positions into the sorted ``doc_ids``, ascending) and ``post_tf``, each document's length, and a
forward index (each document's term ids) for removals and ``terms_of``. A query reads only its terms'
slices and scores them vectorised: the SQLite postings scan it replaces cost 63 ms p50 at 100k chunks
and grew with the corpus (bench/bench_scale.py). Segments are never edited: a merge writes a new
folder, which the SQLite side then names in one commit (see ``bm25.BM25Index``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from vectorstore.fsutil import fsync_dir

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
        return cls("", _finish(np.zeros(0, np.int64), np.zeros(0, np.int64), [], np.zeros(0, np.int64),
                               np.zeros(0, np.int64), np.zeros(0, np.int64)))

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


class Builder:
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


def merge(old: Segment, alive: np.ndarray, new: Builder) -> Segment:
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
    return Segment("", _finish(keys, pos, vocab, doc_ids, doc_len, tf))


def _finish(term_of: np.ndarray, pos: np.ndarray, vocab: list[str], doc_ids: np.ndarray, doc_len: np.ndarray,
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
        docs, tfs = _lookup(segment, tid, cand)
        partial[docs] += contributions(w, tfs, doc_len[docs], kp1, c, norm)
        theta = max(theta, _kth(partial[cand], k))
    cand = np.sort(cand)  # 3. summed in the terms' order
    scores = np.zeros(len(cand))
    for tid, w in terms:
        docs, tfs = _lookup(segment, tid, cand)
        scores[np.searchsorted(cand, docs)] += contributions(w, tfs, doc_len[docs], kp1, c, norm)
    return _best(cand, scores, k)


# Partial scores are summed in another order than the final ones: a margin far above rounding keeps
# every bound safe.
_MARGIN = 1e-9


SEED_DOCS = 4096  # documents scored in full to start the threshold


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
    scores = np.zeros(len(docs))
    for tid, w in terms:
        hit_docs, tfs = _lookup(segment, tid, docs)
        scores[np.searchsorted(docs, hit_docs)] += contributions(w, tfs, segment.doc_len[hit_docs], kp1, c, norm)
    return _kth(scores, k)


def _kth(scores: np.ndarray, k: int) -> float:
    """The k-th largest of ``scores``, or -inf when there are fewer."""
    return float(np.partition(scores, len(scores) - k)[len(scores) - k]) if len(scores) >= k else -math.inf


def _lookup(segment: Segment, tid: int, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
