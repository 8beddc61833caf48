"""Issue 17 item 7: questions with several parts, searched whole versus per part (kb_assistant.multipart).

Two figures, in one run:

1. False splits: how many single questions of CMRC 2018 trial, DRCD dev and tests/data/english_squad.json
   ``split_question`` splits (each split is printed, so it can be judged by eye), and how many of the
   English set's real two-part questions (qa ids ending "-multi") it does split.
2. Joined questions: pairs of questions from DIFFERENT paragraphs (different articles), joined as a user
   would ("Q1；另外，Q2" / "Q1 And q2?"), plus the shared-frame kind where two questions differ only in
   their subject ("猴面包树的别名是什么？" + "夜来香的别名是什么？" -> "猴面包树和夜来香的别名分别是什么？").
   Over the whole set indexed once (the knowledge bases bench_answers keeps under --workdir; built with
   the bundled embedder when missing), each joined question is retrieved three ways: plain (the joined
   question, top_k sources), plain with as many sources as the parts get (top_k + 1), and
   ``retrieve_parts``. Reported: both gold paragraphs among the sources, both gold answers among them,
   and both gold answers inside the prompt packed for a 2,048-token window with the bundled model's
   tokenizer (``build_prompt``, answer reserve max_new_tokens).

    python bench/bench_multipart.py --sets cmrc,drcd,english --pairs 150 [--top-k 3] [--answers 30]
    python bench/bench_multipart.py --splits-only

Measured (December; bundled e5-small, hybrid retrieval, 2 shared CPU cores; whole-set knowledge bases:
CMRC trial 256 paragraphs, DRCD dev first 300, English 40). False splits: CMRC 8/1002 single questions
split (0.80%), DRCD 3/3524 (0.09%), English 0/93; every one of those 11 asks for two things by its own
wording (comparisons "A和B有什么区别", "A和B分别是…"), so by eye the false-split rate is 0. The English
set's five real two-part questions all split. Joined questions split into their two parts: CMRC 0.983
(172, 22 of them shared-frame), DRCD 1.000 (151), English 1.000 (150).

Both gold answers inside the prompt packed at 2,048 tokens ("packed"), today's gate (min_relevance 0.2)
and with the gate off, top_k 5 (plain k=6: as many sources as the parts get):

    set       gate   plain  plain k=6  parts  |  gate off: plain  plain k=6  parts
    cmrc      0.2    0.657  0.657      0.860  |            0.930  0.930      0.948
    drcd      0.2    0.311  0.311      0.689  |            0.914  0.914      0.967
    english   0.2    0.040  0.040      0.247  |            0.947  0.953      1.000

The 22 CMRC shared-frame questions ("猴面包树和夜来香的别名分别是什么？"): 0.682 plain, 0.955 per part
(gated); 1.000 both ways without the gate. At top_k 3 (plain / plain k=4 / parts): cmrc 0.645 / 0.651 /
0.860 gated, 0.907 / 0.924 / 0.942 without the gate; drcd 0.272 / 0.305 / 0.689 and 0.755 / 0.861 /
0.967; english 0.040 / 0.040 / 0.247 and 0.907 / 0.940 / 1.000.

Read: the joined question's vector leans to one part, so under the relevance gate the other part's
paragraph scores below the cut and is dropped (2-3 sources of 5 survive); each part searched alone
scores its own paragraph as relevant as a single question does. Without the gate these small whole-set
knowledge bases leave little to gain at top_k 5 (a 256-paragraph set puts both paragraphs in the top 5
for 93% of joined questions), more at top_k 3 (DRCD 0.755 -> 0.967). The English set's gated figures
are low for every way: its cosines sit under the Chinese-calibrated band (issue 17 item 4).

Answers (--answers 30, CMRC "two questions" pairs, bundled Qwen2.5-0.5B at 2,048 tokens, gate 0.2; answer
holds both gold answers / at least one / "not found"; seconds per joined question on the shared CPU):

    plain        0.100  0.600  0.033  15.7 s
    parts+hint   0.100  0.500  0.000  21.0 s   one prompt: per-part sources, the hint naming each part's
    each part    0.167  0.567  0.000  13.9 s   every part asked as its own question, answers numbered

DRCD, --answers 20: plain 0.000 / 0.450 / 0.050 (16.7 s), parts+hint 0.100 / 0.450 / 0.000 (18.5 s),
each part 0.050 / 0.550 / 0.000 (14.6 s).

The 0.5B model answers about half of single questions (bench_answers), so both parts of a pair are
rarely right together; per-part retrieval helps a little either way (both parts: CMRC 0.100 -> 0.167 asking
each part alone, DRCD 0.000 -> 0.100 with one prompt and the hint), within the noise of so few answers
(one answer moves 0.033 / 0.050).
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kb_assistant.evaluation import EvalQuestion, EvalSet, load_squad_set  # noqa: E402
from kb_assistant.multipart import _ZH_QWORD, retrieve_parts, split_question  # noqa: E402

SHARED = next((p / "shared" / "data" for p in (ROOT, ROOT.parent, ROOT.parent.parent)
               if (p / "shared" / "data").is_dir()), ROOT.parent / "shared" / "data")
SETS: dict[str, tuple[Path, int | None]] = {
    "cmrc": (SHARED / "cmrc2018_trial.json", None),
    "drcd": (SHARED / "drcd_dev.json", 300),  # the paragraphs bench_answers indexes
    "english": (ROOT / "tests" / "data" / "english_squad.json", None),
}
# "subject" + "的…是什么？": the frame two questions can share
_FRAME = re.compile(r"^([^，,、？?的「」《》]{2,10}?)(的[^，,？?]{1,10}?)(是|為|为|有)([^，,？?]{1,8}[？?])$")


def false_splits(paths: dict[str, tuple[Path, int | None]]) -> None:
    print("1. split_question on the sets' own questions (single ones should stay whole)")
    for name, (path, _) in paths.items():
        if not path.exists():
            print(f"  {name}: {path} not found, skipped")
            continue
        data = load_squad_set(path)
        single = [q for q in data.questions + data.unanswerable if not q.all_parts]
        multi = [q for q in data.questions if q.all_parts]
        t0 = time.perf_counter()
        split = [(q.text, split_question(q.text)) for q in single]
        ms = (time.perf_counter() - t0) * 1000 / max(len(single), 1)
        split = [(q, parts) for q, parts in split if len(parts) > 1]
        line = f"  {name}: {len(split)}/{len(single)} single questions split ({len(split) / len(single):.2%})"
        if multi:
            hits = sum(len(split_question(q.text)) > 1 for q in multi)
            line += f"; real multi-part questions split {hits}/{len(multi)}"
        print(f"{line}; {ms:.3f} ms/question")
        for q, parts in split:
            print(f"      {q}  ->  {' | '.join(parts)}")


def join(q1: EvalQuestion, q2: EvalQuestion) -> str:
    """Two questions as one message, the way people type them."""
    a, b = q1.text.strip(), q2.text.strip()
    if re.search(r"[\u3400-\u9fff]", a):
        return f"{a.rstrip('？?。 ')}；另外，{b}"
    return f"{a.rstrip('?. ')}? And {b[:1].lower() + b[1:]}"


def joined_pairs(data: EvalSet, n: int, seed: int) -> list[tuple[str, str, EvalQuestion, EvalQuestion]]:
    """``n`` "two questions" pairs from different articles, then every shared-frame pair found."""
    rng = random.Random(seed)
    qs = [q for q in data.questions if not q.all_parts]
    article = {name: data.articles[i] for i, name in enumerate(data.names)}
    out: list[tuple[str, str, EvalQuestion, EvalQuestion]] = []
    while len(out) < n:
        q1, q2 = rng.sample(qs, 2)
        if article[q1.doc] != article[q2.doc] and len(split_question(q1.text)) == len(split_question(q2.text)) == 1:
            out.append(("two", join(q1, q2), q1, q2))
    frames: dict[str, list[tuple[str, str, EvalQuestion]]] = defaultdict(list)
    for q in qs:
        m = _FRAME.match(q.text.strip())
        if m and not _ZH_QWORD.search(m.group(1)):
            frames[m.group(2)].append((m.group(1), m.group(3) + m.group(4), q))
    for frame, found in frames.items():
        for (s1, tail1, q1), (s2, tail2, q2) in zip(found, found[1:]):
            if article[q1.doc] != article[q2.doc] and tail1 == tail2:
                out.append(("frame", f"{s1}和{s2}{frame}分别{tail1}", q1, q2))
    return out


def evaluate(name: str, path: Path, paragraphs: int | None, args: argparse.Namespace) -> list[dict[str, Any]]:
    from kb_assistant.app import load_generator
    from kb_assistant.embedders import make_embedder
    from kb_assistant.errors import KBError
    from kb_assistant.eval_runner import AnswerEvaluation
    from kb_assistant.prompt import SYSTEM_PROMPT_PLAIN, build_prompt
    from kb_assistant.settings import load_settings

    base = load_settings()
    model = base.model.updated(n_ctx=max(base.model.n_ctx, args.window))
    generator = load_generator(base.model_copy(update={"model": model}))
    data = load_squad_set(path, limit_paragraphs=paragraphs)
    pairs = joined_pairs(data, args.pairs, args.seed)
    start = time.perf_counter()
    with AnswerEvaluation(base, data, Path(args.workdir) / name, make_embedder(base.embedder), generator) as ev:
        print(f"{name}: {len(data.paragraphs)} paragraphs ready in {time.perf_counter() - start:.0f}s "
              f"({ev.embedder.computed} embedded), {len(pairs)} joined questions "
              f"({sum(p[0] == 'frame' for p in pairs)} shared-frame)", file=sys.stderr)
        gated = ev.kb.retriever(ev.settings)
        ungated = ev.kb.retriever(ev.settings, min_relevance=0.0)
        k = args.top_k or ev.settings.top_k
        rows = []
        for kind, text, q1, q2 in pairs:
            parts = split_question(text)
            ways = {}
            for gate, retriever in ((f" gate {gated.min_relevance}", gated), (" no gate", ungated)):
                ways[f"plain{gate}"] = retriever.search(text, k)
                ways[f"plain k={k + 1}{gate}"] = retriever.search(text, k + 1)
                ways[f"parts{gate}"] = retrieve_parts(retriever.search, text, k, parts=parts).sources
            row: dict[str, Any] = {"kind": kind, "split": len(parts) == 2}
            for way, sources in ways.items():
                row[f"{way} n"] = len(sources)
                names = {Path(s.source).name for s in sources}
                texts = [s.text for s in sources]
                row[f"{way} docs"] = q1.doc in names and q2.doc in names
                row[f"{way} answers"] = all(any(a in t for a in q.answers for t in texts) for q in (q1, q2))
                try:
                    built = build_prompt(generator, text, sources, max_new_tokens=ev.settings.max_new_tokens,
                                         context_window=args.window, system=SYSTEM_PROMPT_PLAIN)
                    packed = [s.text for s in built.sources]
                except KBError:
                    packed = []
                row[f"{way} packed"] = all(any(a in t for a in q.answers for t in packed) for q in (q1, q2))
            rows.append(row)
        if args.answers:
            answer_pairs(ev, [p for p in pairs if p[0] == "two"][: args.answers], args)
    return rows


def answer_pairs(ev: Any, pairs: list[tuple[str, str, EvalQuestion, EvalQuestion]], args: argparse.Namespace) -> None:
    """Joined questions answered by today's assistant and by one that searches per part and appends the
    parts hint: how many answers hold both gold answers, at least one, and how many say "not found"."""
    from kb_assistant.assistant import Assistant
    from kb_assistant.evaluation import contains_answer
    from kb_assistant.multipart import parts_hint
    from kb_assistant.prompt import SYSTEM_PROMPT_PLAIN, build_prompt

    class PartsAssistant(Assistant):
        def prepare(self, question, history=()):  # type: ignore[no-untyped-def]
            parts = split_question(question)
            if len(parts) < 2:
                return super().prepare(question, history)
            found = retrieve_parts(self.retriever.search, question, self.settings.top_k, parts=parts)
            # packed once to learn which sources fit, then with the hint naming each part's sources
            kw = {"history": history, "max_new_tokens": self.settings.max_new_tokens,
                  "context_window": self.settings.model.context_window, "system": SYSTEM_PROMPT_PLAIN}
            hint = parts_hint(question, parts, found.serves)
            built = build_prompt(self.generator, f"{question}\n{hint}", found.sources, **kw)
            hint = parts_hint(question, parts, found.serves[: len(built.sources)])
            return build_prompt(self.generator, f"{question}\n{hint}", found.sources, **kw)

    model = ev.settings.model.updated(context_window=args.window, n_ctx=max(ev.settings.model.n_ctx, args.window))
    cfg = ev.settings.model_copy(update={"model": model, **({"top_k": args.top_k} if args.top_k else {})})
    print(f"  answers to {len(pairs)} joined questions of this set:", flush=True)
    def each(assistant: Assistant, question: str) -> tuple[str, bool]:
        """Every part asked as a question of its own, the answers numbered one after the other."""
        parts = split_question(question)
        if len(parts) < 2:
            answer = assistant.ask(question).result()
            return answer.text, answer.found
        answers = [assistant.ask(p).result() for p in parts]
        return "\n".join(f"{i}) {a.text}" for i, a in enumerate(answers, 1)), any(a.found for a in answers)

    variants = {"plain": Assistant, "parts+hint": PartsAssistant, "each part": Assistant}
    for label in args.variants.split(","):
        assistant = variants[label](ev.kb, ev.generator, cfg)
        both = one = not_found = 0
        seconds = 0.0
        for _, text, q1, q2 in pairs:
            t0 = time.perf_counter()
            if label == "each part":
                reply, found = each(assistant, text)
            else:
                answer = assistant.ask(text).result()
                reply, found = answer.text, answer.found
            seconds += time.perf_counter() - t0
            hits = [any(contains_answer(reply, a) for a in q.answers) for q in (q1, q2)]
            both, one, not_found = both + all(hits), one + any(hits), not_found + (not found)
        n = max(len(pairs), 1)
        print(f"      answers {label:10s} n={len(pairs)}  both parts {both / n:.3f}  at least one {one / n:.3f}  "
              f"not found {not_found / n:.3f}  {seconds / n:.1f} s/answer", flush=True)


def report(name: str, rows: list[dict[str, Any]]) -> None:
    for kind in ("two", "frame", "all"):  # "all" also when a set has no shared-frame pairs
        sel = [r for r in rows if kind == "all" or r["kind"] == kind]
        if not sel:
            continue
        n = len(sel)
        print(f"  {name} {kind:5s} n={n:3d}  split into 2 parts {sum(r['split'] for r in sel) / n:.3f}")
        ways = [w[: -len(" docs")] for w in sel[0] if w.endswith(" docs")]
        for way in ways:
            cells = "  ".join(f"{m} {sum(r[f'{way} {m}'] for r in sel) / n:.3f}" for m in ("docs", "answers", "packed"))
            print(f"      {way:22s} sources {sum(r[f'{way} n'] for r in sel) / n:4.1f}  both {cells}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="cmrc,drcd", help=f"joined-question sets, of {sorted(SETS)}")
    parser.add_argument("--pairs", type=int, default=150, help="'two questions' pairs per set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--window", type=int, default=2048)
    parser.add_argument("--workdir", default="/tmp/evalsets/bench",
                        help="whole-set knowledge bases, shared with bench_answers (built when missing)")
    parser.add_argument("--top-k", type=int, default=0, help="sources per question (default: the settings' top_k)")
    parser.add_argument("--answers", type=int, default=0,
                        help="also answer the first N 'two questions' pairs of each set with the bundled model, "
                             "plain vs per part with the parts hint (5-10 s an answer)")
    parser.add_argument("--variants", default="plain,parts+hint,each part",
                        help="answer variants: plain, parts+hint (one prompt, per-part sources, the hint), "
                             "each part (every part answered as its own question)")
    parser.add_argument("--splits-only", action="store_true", help="only the false-split figures (no models)")
    args = parser.parse_args()
    false_splits(SETS)
    if args.splits_only:
        return 0
    from kb_assistant.settings import load_settings

    k = args.top_k or load_settings().top_k
    print(f"\n2. joined questions: both parts' evidence, top_k {k}, packed at a {args.window}-token window")
    for name in [s.strip() for s in args.sets.split(",") if s.strip()]:
        if name not in SETS:
            parser.error(f"unknown set {name}: choose from {', '.join(SETS)}")
        path, paragraphs = SETS[name]
        if not path.exists():
            print(f"  {name}: {path} not found, skipped")
            continue
        report(name, evaluate(name, path, paragraphs, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
