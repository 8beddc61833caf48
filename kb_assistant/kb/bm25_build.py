"""Building a BM25 segment's arrays (``bm25_segment``) with memory bounded by the output's own size.

The postings are a documents x terms sparse matrix: the ``Builder`` collects it by document (CSR),
a segment stores it by term (CSC: each term's positions ascending), and its forward index by
document again. Both conversions are transposes, which ``scipy.sparse`` does as one counting sort
(O(postings), int32 indexes, stable: rows visited in order come out ascending in each column) instead
of 64-bit ``term * n + position`` keys and their argsort (9.6 GB peak RSS for 200M postings at 1M
chunks, bench/bench_segment_build.py). An old segment's postings, already in (term, position) order,
are merged with the new ones a block of terms at a time, so no temporary spans all the postings. The
arrays, their dtypes and their order are exactly those of the previous build (same file format, same
scores bit for bit)."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .bm25_segment import Segment

BLOCK = 1 << 22  # postings per step of a blockwise pass: ~100 MB of temporaries (int64 keys)


class Builder:
    """Documents to put in a segment: ``(id, {term: tf}, length)`` kept compact until the merge."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self.ids = array("q")
        self.lengths = array("q")
        self.counts = array("q")  # distinct terms per document
        self.tids = array("i")  # int32: 200M postings at 1M chunks
        self.tfs = array("H")  # uint16 (as a segment stores them) until a tf needs more

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
            try:
                self.tfs.append(tf)
            except OverflowError:
                self.tfs = array("q", self.tfs)
                self.tfs.append(tf)
        self.ids.append(rid)
        self.lengths.append(length)
        self.counts.append(len(self.tids) - before)


def _np(values: array, dtype: type) -> np.ndarray:
    """A view of an ``array`` (writable; it keeps the array's buffer alive while it exists)."""
    return np.frombuffer(values, dtype=dtype) if len(values) else np.zeros(0, dtype)


def _narrow(ptr: np.ndarray) -> np.ndarray:
    """Offsets as int32 where they fit: given int64 offsets, scipy copies the int32 indexes to int64."""
    return ptr.astype(np.int32) if len(ptr) and ptr[-1] < 2**31 else ptr


def _gather(table: np.ndarray, index: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[:] = table[index]`` a block at a time (``out`` may be ``index`` itself)."""
    for start in range(0, len(index), BLOCK):
        out[start : start + BLOCK] = table[index[start : start + BLOCK]]
    return out


def empty_arrays() -> dict[str, np.ndarray]:
    """The arrays of a segment without documents (each index starts with one: no scipy import)."""
    i64, i32 = np.zeros(0, np.int64), np.zeros(0, np.int32)
    return {"vocab_blob": np.zeros(0, np.uint8), "vocab_off": np.zeros(1, np.int64), "ptr": np.zeros(1, np.int64),
            "post_doc": i32, "post_tf": np.zeros(0, np.uint16), "term_maxtf": i64, "term_mindl": i64,
            "doc_ids": i64, "doc_len": i32, "fwd_ptr": np.zeros(1, np.int64), "fwd_tid": i32}


def merged_arrays(old: Segment, alive: np.ndarray, new: Builder) -> dict[str, np.ndarray]:
    """The arrays of a segment of ``old``'s documents where ``alive`` (a bool per position) plus
    ``new``'s (whose ids must not be alive in ``old``; its postings are consumed). Terms left without
    a posting (their documents all removed) are dropped from the vocabulary."""
    from scipy import sparse  # here: 0.15 s to import, and a query never builds a segment

    a = old.a
    old_vocab = old.vocab()
    vocab = sorted(set(old_vocab).union(new.vocab))
    index = {t: i for i, t in enumerate(vocab)}
    old_union = np.fromiter((index[t] for t in old_vocab), np.int64, len(old_vocab))
    new_union = np.fromiter((index[t] for t in new.vocab), np.int64, len(new.vocab))  # by local id

    # Each term's postings: the new ones, plus the old ones less the removed documents' (their forward index).
    new_tids = _np(new.tids, np.int32)
    df = np.zeros(len(vocab), np.int64)
    df[new_union] = np.bincount(new_tids, minlength=len(new.vocab))
    if len(old_vocab):
        old_df = np.diff(np.asarray(a["ptr"]))
        dead = np.flatnonzero(~alive)
        if len(dead):  # their slices of the forward index only: the rest of its pages stay unread
            fwd_ptr = np.asarray(a["fwd_ptr"])
            sizes = fwd_ptr[dead + 1] - fwd_ptr[dead]
            at = np.repeat(fwd_ptr[dead] - np.cumsum(sizes) + sizes, sizes) + np.arange(int(sizes.sum()))
            old_df -= np.bincount(np.asarray(a["fwd_tid"])[at], minlength=len(old_vocab))
            del at
        df[old_union] += old_df
    used = df > 0
    final_of = np.cumsum(used) - 1  # union id -> final id (an unused term: the previous used term's)
    vocab = [t for t, u in zip(vocab, used.tolist()) if u]
    ptr = np.concatenate([[0], np.cumsum(df[used])]).astype(np.int64)
    v = len(vocab)

    # Documents: the old ones kept and the new ones, by id.
    keep = np.flatnonzero(alive)
    old_ids = np.asarray(a["doc_ids"])[keep]
    new_ids = _np(new.ids, np.int64)
    doc_ids = np.concatenate([old_ids, new_ids])
    order = np.argsort(doc_ids, kind="stable")
    doc_ids = doc_ids[order]
    if len(doc_ids) > 1 and not np.all(doc_ids[1:] > doc_ids[:-1]):
        raise ValueError("a merged id is both in the segment and among the new documents")
    old_len = np.asarray(a["doc_len"])[keep]
    doc_len = np.concatenate([old_len, _np(new.lengths, np.int64)])[order]
    doc_len = doc_len.astype(np.int32 if len(doc_len) == 0 or doc_len.max() < 2**31 else np.int64)
    del order

    # The new postings by term, each term's positions ascending: one transpose of documents x terms.
    new_pos = np.searchsorted(doc_ids, new_ids).astype(np.int32)
    _gather(final_of[new_union].astype(np.int32), new_tids, new_tids)  # in place: the builder is consumed
    new_tfs = _np(new.tfs, np.uint16 if new.tfs.typecode == "H" else np.int64)
    csr = sparse.csr_array((new_tfs, new_tids, _narrow(np.concatenate([[0], np.cumsum(_np(new.counts, np.int64))]))),
                           shape=(len(new_ids), v))
    del new_tids, new_tfs
    if len(new_pos) > 1 and not np.all(new_pos[1:] > new_pos[:-1]):  # not added in id order
        rows = np.argsort(new_pos)
        csr, new_pos = csr[rows], new_pos[rows]
        del rows
    new.tids, new.tfs = array("i"), array("H")  # consumed: 1.2 GB at 1M chunks, freed with ``csr``
    csc = csr.tocsc()
    del csr
    new_ptr, new_tf = csc.indptr.astype(np.int64), csc.data
    new_doc = _gather(new_pos, csc.indices, csc.indices).astype(np.int32, copy=False)  # rows -> positions
    del csc

    if not len(old_vocab):
        post_doc, post_tf = new_doc, new_tf
    else:
        old_pos = np.full(len(alive), -1, dtype=np.int32)
        old_pos[keep] = np.searchsorted(doc_ids, old_ids)
        post_doc, post_tf = _merge_postings(a, alive, old_pos, final_of[old_union], ptr, new_ptr, new_doc, new_tf,
                                            len(doc_ids))
    del new_doc, new_tf
    tf_type = np.uint16 if len(post_tf) == 0 or post_tf.max() < 2**16 else np.int64
    return _finish(vocab, ptr, post_doc, post_tf.astype(tf_type, copy=False), doc_ids, doc_len)


def _blocks(ptr: np.ndarray) -> Iterator[tuple[int, int]]:
    """Ranges of terms ``[t0, t1)`` of about ``BLOCK`` postings each (at least one term)."""
    t0, v = 0, len(ptr) - 1
    while t0 < v:
        t1 = min(v, max(t0 + 1, int(np.searchsorted(ptr, ptr[t0] + BLOCK, "right")) - 1))
        yield t0, t1
        t0 = t1


def _merge_postings(a: dict[str, np.ndarray], alive: np.ndarray, old_pos: np.ndarray, old_final: np.ndarray,
                    ptr: np.ndarray, new_ptr: np.ndarray, new_doc: np.ndarray, new_tf: np.ndarray, n: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The old segment's live postings (renumbered: term ``old_final``, position ``old_pos``) and the new
    ones, by (term, position), a block of terms at a time. ``old_final`` is non-decreasing (an unused old
    term has only removed postings); a new posting goes before an old one with the same key, as the
    previous build's ``np.insert`` put it."""
    old_ptr, old_doc, old_tf = (np.asarray(a[k]) for k in ("ptr", "post_doc", "post_tf"))
    wide = old_tf.dtype != np.uint16 or new_tf.dtype != np.uint16
    post_doc = np.empty(int(ptr[-1]), np.int32)
    post_tf = np.empty(int(ptr[-1]), np.int64 if wide else np.uint16)
    for t0, t1 in _blocks(ptr):
        o0, o1 = np.searchsorted(old_final, [t0, t1])
        s, e = int(old_ptr[o0]), int(old_ptr[o1])
        docs = old_doc[s:e]
        live = alive[docs]
        docs, tfs = old_pos[docs[live]], old_tf[s:e][live].astype(post_tf.dtype, copy=False)
        ns, ne = int(new_ptr[t0]), int(new_ptr[t1])
        out = slice(int(ptr[t0]), int(ptr[t1]))
        if ns == ne:
            post_doc[out], post_tf[out] = docs, tfs
            continue
        old_keys = np.repeat(old_final[o0:o1] - t0, np.diff(old_ptr[o0 : o1 + 1]))[live] * n + docs
        new_keys = np.repeat(np.arange(t1 - t0), np.diff(new_ptr[t0 : t1 + 1])) * n + new_doc[ns:ne]
        at = np.searchsorted(old_keys, new_keys)
        post_doc[out] = np.insert(docs, at, new_doc[ns:ne])
        post_tf[out] = np.insert(tfs, at, new_tf[ns:ne])
    return post_doc, post_tf


def _finish(vocab: list[str], ptr: np.ndarray, post_doc: np.ndarray, post_tf: np.ndarray, doc_ids: np.ndarray,
            doc_len: np.ndarray) -> dict[str, np.ndarray]:
    """The remaining arrays: the vocabulary's bytes, each term's bounds for pruning (``top_k``), and the
    forward index (each document's term ids ascending: the transpose back)."""
    from scipy import sparse

    encoded = [t.encode("utf-8") for t in vocab]
    vocab_off = np.concatenate([[0], np.cumsum([len(e) for e in encoded])]).astype(np.int64)
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    v, n = len(vocab), len(doc_ids)
    term_maxtf = np.maximum.reduceat(post_tf, ptr[:-1]).astype(np.int64) if v else np.zeros(0, np.int64)
    term_mindl = np.zeros(v, np.int64)
    for t0, t1 in _blocks(ptr):
        s, e = int(ptr[t0]), int(ptr[t1])
        term_mindl[t0:t1] = np.minimum.reduceat(doc_len[post_doc[s:e]], ptr[t0:t1] - s)
    fwd = sparse.csc_array((post_tf, post_doc, _narrow(ptr)), shape=(n, v)).tocsr()
    fwd_ptr, fwd_tid = fwd.indptr.astype(np.int64), fwd.indices.astype(np.int32, copy=False)
    del fwd
    return {"vocab_blob": blob, "vocab_off": vocab_off, "ptr": ptr, "post_doc": post_doc, "post_tf": post_tf,
            "term_maxtf": term_maxtf, "term_mindl": term_mindl, "doc_ids": doc_ids.astype(np.int64),
            "doc_len": doc_len, "fwd_ptr": fwd_ptr, "fwd_tid": fwd_tid}
