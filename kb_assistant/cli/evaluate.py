"""``kb eval``: answer-hit@k, MRR, budget recall and (optionally) answer metrics on a SQuAD file."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from .common import print_json, settings_from


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "eval",
        help="measure retrieval, or with --generate the answers, on a SQuAD-format file",
        description="Index every paragraph of DATA.json into a scratch knowledge base and ask every question. "
        "Without --generate: answer-hit@1/3/5/10 and MRR (gold answer text inside a retrieved chunk, beside the "
        "mean chunk length in tokens) and budget recall (the packed prompt at each --context-window holds the "
        "gold answer). With --generate: the answers, as users feel them: contains gold, F1, citation coverage "
        "and precision, unsupported sentences, false 'not found', time to first token; --noise N asks each "
        "question over its paragraph plus N distractors, --unanswerable over related paragraphs without it.",
    )
    p.add_argument("data", metavar="DATA.json")
    p.add_argument("--generate", action="store_true", help="answer the questions with the configured model")
    p.add_argument("--retrieval-only", action="store_true", help=argparse.SUPPRESS)  # the default; kept for scripts
    p.add_argument("--modes", default="hybrid,dense,bm25", help="retrieval modes to compare (comma-separated)")
    p.add_argument("--context-window", type=int, action="append", dest="windows", metavar="N",
                   help="window(s) for budget recall, or to answer in with --generate (repeatable; default "
                   "1024 and 2048, or 2048 with --generate)")
    p.add_argument("--answer-window", type=int, action="append", dest="windows", help=argparse.SUPPRESS)
    p.add_argument("--limit", "--questions", type=int, dest="limit", metavar="N", help="only the first N questions")
    p.add_argument("--noise", type=int, metavar="N",
                   help="with --generate: each question over its gold paragraph plus N paragraphs of other articles")
    p.add_argument("--unanswerable", action="store_true",
                   help="with --generate: each question without its gold paragraph (the rest of its article, or "
                   "the nearest paragraphs when it has no other); reports the honest rejection rate")
    p.add_argument("--seed", type=int, default=0, help="seed of the --noise draw (default 0)")
    p.add_argument("--limit-paragraphs", type=int, help="only the first N paragraphs (and their questions)")
    p.add_argument("--workdir", help="keep the scratch knowledge base here; re-runs reuse its embeddings")
    p.add_argument("--records", metavar="FILE.jsonl", help="with --generate: write every scored answer here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def tokenizer_for(settings: Any, window: int) -> Any:
    """The answer model's own tokenizer and template, without loading weights where possible."""
    if settings.model.generator == "llama-cpp":
        from ..bundled import bundled_model_path
        from ..generators.llama import LlamaCppGenerator

        path = settings.model.model_path or bundled_model_path(settings.models_dir)
        return LlamaCppGenerator(path, n_ctx=window, vocab_only=True)
    from ..app import load_generator

    return load_generator(settings)


def run(args: argparse.Namespace) -> int:
    from ..errors import KBError
    from ..evaluation import load_squad_set

    if args.noise is not None and args.noise < 0:
        raise KBError("--noise must be 0 or more (distractor paragraphs per question)")
    if args.noise is not None and args.unanswerable:
        raise KBError("use --noise or --unanswerable, not both")
    if (args.noise is not None or args.unanswerable) and not args.generate:
        raise KBError("--noise and --unanswerable measure answers: add --generate")
    settings = settings_from(args)
    data = load_squad_set(args.data, limit_paragraphs=args.limit_paragraphs)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="kb-eval-"))
    quiet = args.json or not sys.stderr.isatty()
    if args.generate:
        from .evaluate_answers import run_answers

        return run_answers(args, settings, data, workdir, quiet)
    return run_retrieval(args, settings, data, workdir, quiet)


def run_retrieval(args: argparse.Namespace, settings: Any, data: Any, workdir: Path, quiet: bool) -> int:
    from tqdm import tqdm

    from ..embedders import make_embedder
    from ..evaluation import kb_search, score_retrieval, write_paragraphs
    from ..kb import KnowledgeBase

    windows = args.windows or [1024, 2048]
    reserve = min(settings.max_new_tokens, 256)
    paragraphs, questions = data.paragraphs, data.questions
    asked = questions[: args.limit] if args.limit else questions
    scratch = settings.model_copy(update={"data_dir": workdir / "data"})
    results: dict[str, Any] = {"data": str(args.data), "paragraphs": len(paragraphs), "questions": len(asked)}
    with KnowledgeBase.open(scratch, "eval", make_embedder(settings.embedder)) as kb:
        bar = tqdm(total=len(paragraphs), desc="indexing", unit="file", disable=quiet, file=sys.stderr)
        report = kb.index_paths([write_paragraphs(paragraphs, workdir / "docs")],
                                progress=lambda d, t, p: bar.update(d - bar.n))
        bar.close()
        if report.failed:
            print(f"warning: {len(report.failed)} paragraphs failed to index", file=sys.stderr)
        tokenizer = tokenizer_for(settings, max(windows))
        chunks = [p["text"] for _, p in kb.store.payloads()]
        results["chunks"] = len(chunks)
        results["retrieval"] = []
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            with tqdm(total=len(asked), desc=mode, unit="q", disable=quiet, file=sys.stderr) as qbar:

                def advance(done: int, total: int, qbar: Any = qbar) -> None:
                    qbar.update(done - qbar.n)

                scores = score_retrieval(mode, kb_search(kb, mode), asked, tokenizer, windows=windows,
                                         max_new_tokens=reserve, chunk_texts=chunks, progress=advance)
            results["retrieval"].append(scores.to_dict())
    if args.json:
        print_json(results)
    else:
        print_report(results, windows)
    return 0


def print_report(results: dict[str, Any], windows: list[int]) -> None:
    print(f"{Path(results['data']).name}: {results['paragraphs']} paragraphs, {results['chunks']} chunks, "
          f"{results['questions']} questions")
    head = ["mode", "hit@1", "hit@3", "hit@5", "hit@10", "MRR", "chunk tok"] + [f"budget@{w}" for w in windows]
    print("  ".join(f"{h:>10}" for h in head) + "   overflows")
    for r in results["retrieval"]:
        cells = [r["name"], *(f"{r[f'hit@{k}']:.3f}" for k in (1, 3, 5, 10)), f"{r['mrr']:.3f}",
                 f"{r['mean_chunk_tokens']:.0f}", *(f"{r[f'budget_recall@{w}']:.3f}" for w in windows)]
        print("  ".join(f"{c:>10}" for c in cells) + f"   {r['overflows']}")
