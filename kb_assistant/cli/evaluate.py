"""``kb eval``: answer-hit@k, MRR, budget recall and (optionally) answer metrics on a SQuAD file."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from .common import print_json, settings_from


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "eval",
        help="measure retrieval (and answers) on a SQuAD-format file",
        description="Index every paragraph of DATA.json into a scratch knowledge base, ask every question, "
        "and report answer-hit@1/3/5/10 and MRR (gold answer text inside a retrieved chunk, beside the "
        "mean chunk length in tokens), budget recall (the packed prompt at each --context-window holds "
        "the gold answer) and, unless --retrieval-only, exact match / F1 of generated answers, citation "
        "precision, mean prompt tokens and overflows.",
    )
    p.add_argument("data", metavar="DATA.json")
    p.add_argument("--retrieval-only", action="store_true", help="no generation")
    p.add_argument("--modes", default="hybrid,dense,bm25", help="retrieval modes to compare (comma-separated)")
    p.add_argument("--context-window", type=int, action="append", dest="windows", metavar="N",
                   help="window(s) for budget recall (repeatable; default 1024 and 2048)")
    p.add_argument("--answer-window", type=int, action="append", dest="answer_windows", metavar="N",
                   help="window(s) for the generation metrics (repeatable; default 2048)")
    p.add_argument("--questions", type=int, help="only the first N questions for retrieval")
    p.add_argument("--generate", type=int, default=100, metavar="N", help="questions to answer (default 100)")
    p.add_argument("--limit-paragraphs", type=int, help="only the first N paragraphs (and their questions)")
    p.add_argument("--workdir", help="keep the scratch knowledge base here; re-runs reuse its embeddings")
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
    from tqdm import tqdm

    from ..embedders import make_embedder
    from ..evaluation import kb_search, load_squad, score_retrieval, write_paragraphs
    from ..kb import KnowledgeBase

    settings = settings_from(args)
    windows = args.windows or [1024, 2048]
    answer_windows = args.answer_windows or [2048]
    reserve = min(settings.max_new_tokens, 256)
    paragraphs, questions = load_squad(args.data, limit_paragraphs=args.limit_paragraphs)
    asked = questions[: args.questions] if args.questions else questions
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="kb-eval-"))
    scratch = settings.model_copy(update={"data_dir": workdir / "data"})
    quiet = args.json or not sys.stderr.isatty()
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
        if not args.retrieval_only:
            results["answers"] = [answer_metrics(kb, settings, questions[: args.generate], w)
                                  for w in answer_windows]
    if args.json:
        print_json(results)
    else:
        print_report(results, windows)
    return 0


def answer_metrics(kb: Any, settings: Any, questions: list[Any], window: int) -> dict[str, Any]:
    """Generate answers with the configured model at one window; EM/F1, citation precision, tokens."""
    from ..app import make_assistant
    from ..evaluation import contains_answer, exact_match, f1_score

    model = settings.model.updated(context_window=window, n_ctx=max(settings.model.n_ctx, window))
    cfg = settings.model_copy(update={"model": model})
    assistant = make_assistant(cfg, kb)
    em, f1, contains, cited, cited_good, tokens, overflows = [], [], [], 0, 0, [], 0
    for q in questions:
        answer = assistant.ask(q.text).result()
        em.append(max(exact_match(answer.text, g) for g in q.answers))
        f1.append(max(f1_score(answer.text, g) for g in q.answers))
        contains.append(max(contains_answer(answer.text, g) for g in q.answers))
        for c in answer.citations:
            cited += 1
            cited_good += any(g in c.source.text for g in q.answers)
        tokens.append(answer.prompt_tokens)
        overflows += answer.prompt_tokens + cfg.max_new_tokens > window
    n = max(len(questions), 1)
    return {
        "window": window, "questions": len(questions), "exact_match": round(sum(em) / n, 4),
        "f1": round(sum(f1) / n, 4), "contains_gold": round(sum(contains) / n, 4),
        "citation_precision": round(cited_good / cited, 4) if cited else None,
        "mean_prompt_tokens": round(statistics.mean(tokens), 1) if tokens else 0, "overflows": overflows,
    }


def print_report(results: dict[str, Any], windows: list[int]) -> None:
    print(f"{Path(results['data']).name}: {results['paragraphs']} paragraphs, {results['chunks']} chunks, "
          f"{results['questions']} questions")
    head = ["mode", "hit@1", "hit@3", "hit@5", "hit@10", "MRR", "chunk tok"] + [f"budget@{w}" for w in windows]
    print("  ".join(f"{h:>10}" for h in head) + "   overflows")
    for r in results["retrieval"]:
        cells = [r["name"], *(f"{r[f'hit@{k}']:.3f}" for k in (1, 3, 5, 10)), f"{r['mrr']:.3f}",
                 f"{r['mean_chunk_tokens']:.0f}", *(f"{r[f'budget_recall@{w}']:.3f}" for w in windows)]
        print("  ".join(f"{c:>10}" for c in cells) + f"   {r['overflows']}")
    for a in results.get("answers", []):
        print(f"answers @ {a['window']} ({a['questions']} q): EM {a['exact_match']:.3f}  F1 {a['f1']:.3f}  "
              f"contains-gold {a['contains_gold']:.3f}  citation precision {a['citation_precision']}  "
              f"mean prompt tokens {a['mean_prompt_tokens']}  overflows {a['overflows']}")
