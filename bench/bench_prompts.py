"""Issue 17 item 2: prompt styles and decoding for the small model, compared by measured answer accuracy.

Each question is retrieved once ("full" run: the whole set is the knowledge base, bundled embedder,
hybrid, top_k 5), then every variant packs the same sources with its prompt style (kb_assistant.prompt
PROMPT_STYLES) at a 2,048-token window and the bundled Qwen2.5-0.5B answers; scored as `kb eval
--generate` scores it: the answer contains a gold entry (normalised), character/word F1. Variants that
render the same prompt share the model's prefix cache, and identical prompt+decoding pairs are answered
once. Results are appended to --out (JSON lines) as they come, so a run can be stopped and resumed.

    python bench/bench_prompts.py --limit 8 --workdir /tmp/prompt-bench       # every variant (the first table)
    python bench/bench_prompts.py --limit 20 --variants plain@0.1,plain,question-first,example
    python bench/bench_prompts.py --limit 8 --evidence 384 --variants plain,question-first   # focused evidence
    python bench/bench_prompts.py --table --variants plain,question-first     # a table of --out only

Measured (December; bundled e5-small + Qwen2.5-0.5B Q4 via llama.cpp, 2 shared CPU cores, 2,048-token
window, default retrieval: hybrid, top_k 5, min_relevance 0.2, answers capped at 128 tokens). "vs plain":
paired on contains-gold, questions only this variant gets right / only "plain" gets right. "s/ans" is not
a speed figure: variants run in turn on each question, and one whose prompt extends the previous prompt's
prefix pays only for the rest. Styles are run greedy (temperature 0) unless named "@0.1".

All variants, the first 8 CMRC trial and DRCD dev questions and 8 spread English ones (1, 1 and 3 of
them got no source past the relevance gate, so are wrong for every variant):

    variant                    ev     cmrc gold/F1     drcd gold/F1  english gold/F1      all gold/F1   vs plain  s/ans
      N = cmrc 8, drcd 8, english 8
    plain@0.1                   -      0.500/0.475      0.125/0.050      0.625/0.464      0.417/0.330      +1/-0    8.3
    plain                       -      0.500/0.493      0.000/0.027      0.625/0.464      0.375/0.328      +0/-0    1.3
    plain+rp1.1                 -      0.500/0.493      0.000/0.027      0.625/0.450      0.375/0.323      +0/-0    1.2
    plain-zh                    -      0.500/0.492      0.000/0.038      0.625/0.464      0.375/0.331      +0/-0    2.1
    plain-both                  -      0.500/0.492      0.125/0.088      0.625/0.464      0.417/0.348      +1/-0    8.7
    plain-match                 -      0.500/0.492      0.000/0.038      0.625/0.464      0.375/0.331      +0/-0    8.2
    short                       -      0.250/0.364      0.125/0.142      0.625/0.625      0.333/0.377      +1/-2    8.3
    answer-first                -      0.375/0.475      0.000/0.095      0.625/0.271      0.333/0.280      +0/-1    1.2
    example                     -      0.125/0.507      0.125/0.229      0.625/0.485      0.292/0.407      +1/-3    8.2
    question-first              -      0.500/0.472      0.375/0.129      0.625/0.433      0.500/0.345      +3/-0    8.3

The leaders on more questions (first 20 CMRC, first 16 DRCD; English as above):

    variant                    ev     cmrc gold/F1     drcd gold/F1  english gold/F1      all gold/F1   vs plain  s/ans
      N = cmrc 20, drcd 16, english 8
    plain@0.1                   -      0.600/0.456      0.250/0.102      0.625/0.464      0.477/0.329      +1/-0   11.9
    plain                       -      0.600/0.472      0.188/0.093      0.625/0.464      0.455/0.333      +0/-0    1.5
    example                     -      0.350/0.558      0.188/0.221      0.625/0.485      0.341/0.422      +1/-6   11.3
    question-first              -      0.550/0.397      0.312/0.103      0.625/0.433      0.477/0.297      +3/-2   11.7

Read: no prompt variant measurably beats today's "plain" on contains-gold; the differences are of one
to three questions in 24-44, which is noise at this N (one question is 2-4 points). Instruction language
(English, Chinese, both, the question's) changes almost nothing: the 0.5B model answers in the question's
language whatever the instruction's. Temperature 0.1 against greedy and a 1.1 repetition penalty: the same
answers but for one or two (so neither is added to the Generator seam). Measurably worse on contains-gold:
the worked example (+1/-6: terser answers, so F1 rises to 0.42 while the exact gold span is dropped more
often), "shortest exact answer" and "answer first" (the model then picks a wrong short span). Question
before the evidence (it is also repeated after) is +3/-2: kept as a named style, not the default.
DRCD scores are low for every style partly because the model drifts to simplified characters
("發現" -> "发现"), which contains-gold does not normalise.

The best two with focused evidence (kb_assistant.evidence.select_evidence, 384 tokens, `--evidence 384`)
against whole chunks, on the same questions (first 20 CMRC, first 17 DRCD, 8 English):

    variant                    ev     cmrc gold/F1     drcd gold/F1  english gold/F1      all gold/F1   vs plain  s/ans
      N = cmrc 20, drcd 17, english 8
    plain                       -      0.600/0.472      0.176/0.092      0.625/0.464      0.444/0.327      +0/-0    1.5
    question-first              -      0.550/0.397      0.294/0.104      0.625/0.433      0.467/0.293      +3/-2   11.8
    plain                     384      0.650/0.473      0.353/0.148      0.625/0.464      0.533/0.349      +4/-0    6.0
    question-first            384      0.550/0.462      0.294/0.152      0.625/0.433      0.467/0.340      +2/-1    5.5

Read: focused evidence helps "plain" (+4/-0, contains gold 0.44 -> 0.53, F1 0.33 -> 0.35; the prompt
is 844 -> 463 tokens on CMRC, 953 -> 473 on DRCD, the gold still in it as often), and with evidence
"plain" leads "question-first" (+4/-1 paired). So "plain" stays the small-model style in both modes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_answers import SETS  # noqa: E402


@dataclass(frozen=True)
class Variant:
    style: str
    temperature: float = 0.0
    repeat_penalty: float = 1.0


# name -> variant. Styles are compared under greedy decoding (deterministic, so a difference is the
# prompt's); "plain@0.1" is today's pipeline (plain style, temperature 0.1).
VARIANTS: dict[str, Variant] = {
    "plain@0.1": Variant("plain", 0.1),
    "plain": Variant("plain"),
    "plain+rp1.1": Variant("plain", 0.0, 1.1),
    "plain-zh": Variant("plain-zh"),
    "plain-both": Variant("plain-both"),
    "plain-match": Variant("plain-match"),
    "short": Variant("short"),
    "answer-first": Variant("answer-first"),
    "example": Variant("example"),
    "question-first": Variant("question-first"),
}


REFERENCE = "plain"  # the paired column compares each variant with this one, whole chunks


def load_questions(set_name: str, limit: int) -> tuple[Any, list[Any]]:
    from kb_assistant.evaluation import load_squad_set

    path, paragraphs, _, spread = SETS[set_name]
    data = load_squad_set(path, limit_paragraphs=paragraphs)
    questions = data.questions[:limit]
    if spread and len(data.questions) > limit:  # as bench_answers: evenly spaced over our grouped sets
        step = len(data.questions) / limit
        questions = [data.questions[int(i * step)] for i in range(limit)]
    return data, questions


def answer(gen: Any, messages: Any, v: Variant, max_tokens: int) -> tuple[str, float]:
    """The model's whole answer and its seconds. Calls llama.cpp directly (not Generator.stream) so
    that decoding options the Generator seam does not have yet can be measured before adding them."""
    start = time.perf_counter()
    out = gen._llm.create_completion(gen.render(messages), max_tokens=max_tokens, temperature=v.temperature,
                                     repeat_penalty=v.repeat_penalty, stop=list(gen._stop))
    return out["choices"][0]["text"].strip(), time.perf_counter() - start


def run(args: argparse.Namespace, names: list[str], out: Path) -> None:
    from kb_assistant.app import load_generator
    from kb_assistant.embedders import make_embedder
    from kb_assistant.eval_runner import AnswerEvaluation
    from kb_assistant.evaluation import contains_answer, f1_score
    from kb_assistant.prompt import build_prompt, prompt_style
    from kb_assistant.settings import load_settings

    done = set()
    if out.exists():
        for line in out.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            done.add((r["set"], r["qid"], r["variant"], r["evidence"]))
    base = load_settings()
    if args.min_relevance is not None:
        base = base.model_copy(update={"min_relevance": args.min_relevance})
    model = base.model.updated(n_ctx=max(base.model.n_ctx, args.window), context_window=args.window)
    base = base.model_copy(update={"model": model})
    embedder = make_embedder(base.embedder)
    gen = load_generator(base)
    for set_name in args.sets.split(","):
        data, questions = load_questions(set_name, args.limit)
        with AnswerEvaluation(base, data, Path(args.workdir) / set_name, embedder, gen) as ev:
            retriever = ev.kb.retriever(ev.settings)
            for q in questions:
                todo = [n for n in names if (set_name, q.qid, n, args.evidence) not in done]
                if not todo:
                    continue
                sources = retriever.search(q.text, base.top_k)
                if args.evidence and sources:
                    from kb_assistant.evidence import select_evidence

                    kept = select_evidence(q.text, sources, ev.embedder, count_tokens=gen.count_tokens,
                                           budget=args.evidence)
                    sources = [e.as_source() for e in kept]
                memo: dict[tuple[Any, ...], tuple[str, float]] = {}
                for name in todo:
                    v = VARIANTS[name]
                    if sources:
                        built = build_prompt(gen, q.text, sources, max_new_tokens=base.max_new_tokens,
                                             context_window=args.window, style=prompt_style(v.style))
                        key = (built.messages, v)
                        if key not in memo:
                            memo[key] = answer(gen, built.messages, v, args.max_tokens)
                        text, seconds = memo[key]
                        in_prompt = any(contains_answer(m.content, g) for m in built.messages[-1:]
                                        for g in q.answers)
                        tokens = built.prompt_tokens
                    else:
                        text, seconds, in_prompt, tokens = "", 0.0, False, 0
                    record = {
                        "set": set_name, "qid": q.qid, "variant": name, "evidence": args.evidence,
                        "answer": text, "gold": any(contains_answer(text, g) for g in q.answers),
                        "f1": max((f1_score(text, g) for g in q.answers), default=0.0),
                        "in_prompt": in_prompt, "prompt_tokens": tokens, "seconds": round(seconds, 2),
                    }
                    with out.open("a", encoding="utf-8") as f:
                        f.write(json.dumps(record, ensure_ascii=False) + "\n")
                print(f"{set_name} {q.qid}: {len(todo)} variants", file=sys.stderr, flush=True)


def table(out: Path, names: list[str] | None = None, evidence: int | None = None) -> str:
    """Per variant (and evidence budget): contains gold and F1 per set and over all, mean seconds.
    Only questions every listed variant answered are counted, so the columns compare like with like."""
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    keys = sorted({(r["variant"], r["evidence"]) for r in records if (names is None or r["variant"] in names)
                   and (evidence is None or r["evidence"] == evidence)},
                  key=lambda k: (k[1], list(VARIANTS).index(k[0]) if k[0] in VARIANTS else 99))
    by = {(r["variant"], r["evidence"], r["set"], r["qid"]): r for r in records}
    sets = list(dict.fromkeys(r["set"] for r in records))
    common = {s: sorted({r["qid"] for r in records if r["set"] == s
                         and all((k[0], k[1], s, r["qid"]) in by for k in keys)}) for s in sets}
    head = f"{'variant':24} {'ev':>4} " + " ".join(f"{s + ' gold/F1':>16}" for s in sets) + \
        f" {'all gold/F1':>16} {'vs ' + REFERENCE:>10} {'s/ans':>6}"
    lines = [head, "  N = " + ", ".join(f"{s} {len(common[s])}" for s in sets)]
    for variant, ev in keys:
        cells, every = [], []
        for s in sets:
            rows = [by[(variant, ev, s, q)] for q in common[s]]
            every += rows
            cells.append(f"{_mean(rows, 'gold'):.3f}/{_mean(rows, 'f1'):.3f}" if rows else "-")
        secs = [r["seconds"] for r in every if r["seconds"]]
        # paired, on "contains gold": questions only this variant gets right / only the reference does
        ref = [by.get((REFERENCE, 0, r["set"], r["qid"])) for r in every]
        won = sum(r["gold"] and not o["gold"] for r, o in zip(every, ref) if o)
        lost = sum(o["gold"] and not r["gold"] for r, o in zip(every, ref) if o)
        lines.append(f"{variant:24} {ev or '-':>4} " + " ".join(f"{c:>16}" for c in cells)
                     + f" {_mean(every, 'gold'):.3f}/{_mean(every, 'f1'):.3f}".rjust(17)
                     + f" {f'+{won}/-{lost}':>10} {statistics.mean(secs) if secs else 0:6.1f}")
    return "\n".join(lines)


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.mean(float(r[key]) for r in rows) if rows else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", help=f"comma-separated, of {list(VARIANTS)} (default: all)")
    parser.add_argument("--sets", default="cmrc,drcd,english")
    parser.add_argument("--limit", type=int, default=15, help="questions per set")
    parser.add_argument("--window", type=int, default=2048)
    parser.add_argument("--max-tokens", type=int, default=128, help="answer cap (the same for every variant)")
    parser.add_argument("--min-relevance", type=float, default=None,
                        help="relevance gate (default: the setting's, as users get it; 0 keeps all top_k)")
    parser.add_argument("--evidence", type=int,
                        help="focused evidence budget in tokens (default 0: whole chunks; --table: this mode only)")
    parser.add_argument("--workdir", default="/tmp/kb-bench-answers")
    parser.add_argument("--out", default="/tmp/bench_prompts.jsonl")
    parser.add_argument("--table", action="store_true", help="only print the table of --out")
    args = parser.parse_args()
    names = [n.strip() for n in (args.variants or ",".join(VARIANTS)).split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {', '.join(unknown)}: choose from {', '.join(VARIANTS)}")
    out = Path(args.out)
    if not args.table:
        args.evidence = args.evidence or 0
        run(args, names, out)
    print(table(out, names if args.variants else None, args.evidence))
    return 0


if __name__ == "__main__":
    sys.exit(main())
