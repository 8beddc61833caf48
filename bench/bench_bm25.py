"""BM25-only retrieval quality on CMRC 2018 / DRCD and index speed at ~20k chunks; prints figures.

.venv/bin/python bench/bench_bm25.py [--variants] [--synthetic 20000]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kb_assistant import tokenize as tok  # noqa: E402
from kb_assistant.kb.bm25 import BM25Index  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
CHUNK = 400


def load(path: Path) -> tuple[list[str], list[tuple[str, tuple[str, ...]]]]:
    """Fixed-size 400-character chunks of every context, and (question, gold answers) pairs."""
    data = json.loads(path.read_text(encoding="utf-8"))
    chunks: list[str] = []
    questions: list[tuple[str, tuple[str, ...]]] = []
    for article in data["data"]:
        for para in article["paragraphs"]:
            ctx = para["context"]
            chunks.extend(ctx[i : i + CHUNK] for i in range(0, len(ctx), CHUNK))
            for qa in para["qas"]:
                answers = tuple(dict.fromkeys(a["text"] for a in qa["answers"] if a["text"].strip()))
                if answers:
                    questions.append((qa["question"], answers))
    return chunks, questions


def variant(mode: str) -> Callable[[str], list[str]]:
    """tokenize() with another jieba mode, for comparison (the default is "search", HMM off)."""

    def cut(text: str) -> list[str]:
        jieba = tok._segmenter()
        out: list[str] = []
        for match in tok._TOKEN.finditer(tok.normalize(text)):
            piece = match.group()
            if match.lastgroup == "cjk":
                if mode == "cut":
                    words = jieba.cut(piece, HMM=True)
                elif mode == "search-hmm":
                    words = jieba.cut_for_search(piece, HMM=True)
                elif mode == "search+bigram":
                    words = [
                        *jieba.cut_for_search(piece, HMM=False),
                        *(piece[i : i + 2] for i in range(len(piece) - 1)),
                    ]
                else:
                    raise ValueError(mode)
                out.extend(w for w in words if w not in tok.STOPWORDS)
            elif match.lastgroup == "num":
                out.append(piece.replace(",", ""))
            elif piece not in tok.STOPWORDS:
                out.append(piece)
        return out

    return cut


def quality(name: str, path: Path, folder: Path, tokenizer: Callable[[str], list[str]], label: str) -> None:
    chunks, questions = load(path)
    with BM25Index.open(folder / f"{name}-{label}.db", tokenizer=tokenizer, tokenizer_id=label) as index:
        t0 = time.perf_counter()
        index.add(enumerate(chunks))
        build = time.perf_counter() - t0
        hit1 = hit5 = 0
        for question, answers in questions:
            ids = [rid for rid, _ in index.search(question, 5)]
            ranks = [r for r, rid in enumerate(ids, 1) if any(a in chunks[rid] for a in answers)]
            hit1 += bool(ranks and ranks[0] == 1)
            hit5 += bool(ranks)
    q = len(questions)
    print(
        f"{name:6s} {label:14s} chunks={len(chunks):5d} questions={q:5d} "
        f"hit@1={hit1 / q:.3f} hit@5={hit5 / q:.3f} (build {build:.1f}s)"
    )


def pct(values: list[float], p: float) -> float:
    return sorted(values)[min(len(values) - 1, int(p * len(values)))]


def speed(folder: Path, synthetic: int) -> None:
    real: list[str] = []
    questions: list[str] = []
    for file in ("cmrc2018_trial.json", "drcd_dev.json"):
        chunks, qs = load(DATA / file)
        real += chunks
        questions += [q for q, _ in qs]
    rng = random.Random(0)
    corpus = "".join(real)
    # Synthetic chunks: 400-character windows at random offsets of the real text (realistic vocabulary).
    extra = []
    for _ in range(synthetic):
        start = rng.randrange(0, len(corpus) - CHUNK)
        extra.append(corpus[start : start + CHUNK])
    texts = real + extra
    path = folder / "speed.db"
    with BM25Index.open(path) as index:
        t0 = time.perf_counter()
        for start in range(0, len(texts), 1000):
            index.add(((i, texts[i]) for i in range(start, min(start + 1000, len(texts)))), source_generation=start)
        add_s = time.perf_counter() - t0
        n = index.count()
        tok_t0 = time.perf_counter()
        for text in texts[:2000]:
            tok.tokenize(text)
        tok_rate = 2000 / (time.perf_counter() - tok_t0)
        print(
            f"speed  indexed {n} chunks in {add_s:.1f}s = {n / add_s:.0f} chunks/s incl. tokenising "
            f"(tokeniser alone {tok_rate:.0f} chunks/s); file {path.stat().st_size / 2**20:.0f} MiB "
            f"+ wal {Path(str(path) + '-wal').stat().st_size / 2**20:.0f} MiB"
        )
        sample = rng.sample(questions, min(1000, len(questions)))
        for q in sample[:20]:  # warm the page cache
            index.search(q, 10)
        lat: list[float] = []
        tok_lat: list[float] = []
        for q in sample:
            t = time.perf_counter()
            tok.tokenize(q)
            tok_lat.append(time.perf_counter() - t)
            t = time.perf_counter()
            index.search(q, 10)
            lat.append(time.perf_counter() - t)
        ms = [x * 1000 for x in lat]
        print(
            f"speed  search k=10 over {n} chunks, {len(ms)} queries: p50={pct(ms, 0.5):.1f} ms "
            f"p95={pct(ms, 0.95):.1f} ms max={max(ms):.1f} ms mean={statistics.mean(ms):.1f} ms "
            f"(tokenising the query: p50={pct(tok_lat, 0.5) * 1000:.2f} ms)"
        )
        # Incremental updates on the full index: one small add, one remove, as the knowledge base would.
        t = time.perf_counter()
        index.add([(10**9 + i, texts[i]) for i in range(10)])
        small_add = time.perf_counter() - t
        t = time.perf_counter()
        index.remove([10**9 + i for i in range(10)])
        small_remove = time.perf_counter() - t
        print(f"speed  add 10 chunks to it: {small_add * 1e3:.0f} ms; remove them: {small_remove * 1e3:.0f} ms")
    with BM25Index.open(folder / "rebuild.db") as index:
        t = time.perf_counter()
        index.rebuild(enumerate(texts))
        print(f"speed  rebuild({len(texts)}) in one transaction: {time.perf_counter() - t:.1f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variants", action="store_true", help="also compare jieba cut modes")
    parser.add_argument("--synthetic", type=int, default=20000, help="synthetic chunks for the speed test")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    labels: dict[str, Callable[[str], list[str]]] = {"search": tok.tokenize}
    if args.variants:
        labels |= {m: variant(m) for m in ("cut", "search-hmm", "search+bigram")}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, file in (("cmrc", "cmrc2018_trial.json"), ("drcd", "drcd_dev.json")):
            for label, fn in labels.items():
                quality(name, DATA / file, folder, fn, label)
        if not args.skip_speed:
            speed(folder, args.synthetic)


if __name__ == "__main__":
    main()
