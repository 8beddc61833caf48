"""``kb eval``: retrieval and answer quality on any SQuAD-format file, in a scratch knowledge base."""

from __future__ import annotations

import json
import re
import statistics
import string
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import KBError
from .generators.base import Generator
from .kb import KnowledgeBase
from .prompt import SYSTEM_PROMPT_PLAIN, build_prompt
from .types import Source

HIT_KS = (1, 3, 5, 10)
BUDGET_CANDIDATES = 30  # sources offered to the packer when measuring budget recall


@dataclass(frozen=True)
class EvalQuestion:
    text: str
    answers: tuple[str, ...]
    doc: str  # file name of the paragraph the question was asked about


def load_squad(path: str | Path, *, limit_paragraphs: int | None = None) -> tuple[list[str], list[EvalQuestion]]:
    """Paragraph texts (paragraph ``i`` becomes file ``p{i:05d}.txt``) and questions with gold answers."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    paragraphs: list[str] = []
    questions: list[EvalQuestion] = []
    for article in data["data"]:
        for para in article["paragraphs"]:
            if limit_paragraphs is not None and len(paragraphs) >= limit_paragraphs:
                return paragraphs, questions
            name = f"p{len(paragraphs):05d}.txt"
            paragraphs.append(para["context"])
            for qa in para["qas"]:
                answers = tuple(dict.fromkeys(a["text"].strip() for a in qa["answers"] if a["text"].strip()))
                if answers:
                    questions.append(EvalQuestion(qa["question"], answers, name))
    return paragraphs, questions


def write_paragraphs(paragraphs: Sequence[str], folder: Path) -> Path:
    """One UTF-8 file per paragraph; existing identical files are left alone (re-runs stay incremental)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(paragraphs):
        path = folder / f"p{i:05d}.txt"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    return folder


def hit_rank(texts: Sequence[str], answers: Sequence[str]) -> int | None:
    """1-based rank of the first text that contains a gold answer."""
    for rank, text in enumerate(texts, 1):
        if any(a in text for a in answers):
            return rank
    return None


@dataclass
class RetrievalScores:
    """answer-hit@k, MRR@10 and budget recall per window for one retrieval configuration."""

    name: str
    ranks: list[int | None] = field(default_factory=list)
    budget_hits: dict[int, list[bool]] = field(default_factory=dict)
    prompt_tokens: dict[int, list[int]] = field(default_factory=dict)
    overflows: int = 0
    mean_chunk_tokens: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def hit_at(self, k: int) -> float:
        return sum(r is not None and r <= k for r in self.ranks) / max(len(self.ranks), 1)

    @property
    def mrr(self) -> float:
        return sum(1.0 / r for r in self.ranks if r is not None and r <= 10) / max(len(self.ranks), 1)

    def budget_recall(self, window: int) -> float:
        hits = self.budget_hits.get(window, [])
        return sum(hits) / max(len(hits), 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "questions": len(self.ranks),
            **{f"hit@{k}": round(self.hit_at(k), 4) for k in HIT_KS},
            "mrr": round(self.mrr, 4),
            "mean_chunk_tokens": round(self.mean_chunk_tokens, 1),
            **{f"budget_recall@{w}": round(self.budget_recall(w), 4) for w in sorted(self.budget_hits)},
            **{f"mean_prompt_tokens@{w}": round(statistics.mean(v), 1) for w, v in sorted(self.prompt_tokens.items())
               if v},
            "overflows": self.overflows,
            "median_latency_ms": round(statistics.median(self.latencies) * 1000, 1) if self.latencies else None,
        }


SearchFn = Callable[[str, int], list[Source]]


def score_retrieval(
    name: str,
    search: SearchFn,
    questions: Sequence[EvalQuestion],
    tokenizer: Generator,
    *,
    windows: Sequence[int],
    max_new_tokens: int,
    chunk_texts: Sequence[str],
    progress: Callable[[int, int], None] | None = None,
) -> RetrievalScores:
    """Rank of the first answer-bearing chunk, and whether the packed prompt at each window holds it."""
    scores = RetrievalScores(name, budget_hits={w: [] for w in windows}, prompt_tokens={w: [] for w in windows})
    sample = list(chunk_texts)[:: max(1, len(chunk_texts) // 500)]
    scores.mean_chunk_tokens = statistics.mean(tokenizer.count_tokens(t) for t in sample) if sample else 0.0
    for i, q in enumerate(questions):
        t0 = time.perf_counter()
        sources = search(q.text, max(BUDGET_CANDIDATES, max(HIT_KS)))
        scores.latencies.append(time.perf_counter() - t0)
        scores.ranks.append(hit_rank([s.text for s in sources[: max(HIT_KS)]], q.answers))
        for window in windows:
            try:
                built = build_prompt(tokenizer, q.text, sources, max_new_tokens=max_new_tokens,
                                     context_window=window, system=SYSTEM_PROMPT_PLAIN)
            except KBError:  # the question alone does not fit this window: nothing to recall
                scores.budget_hits[window].append(False)
                continue
            if built.prompt_tokens + max_new_tokens > window:
                scores.overflows += 1
            scores.prompt_tokens[window].append(built.prompt_tokens)
            scores.budget_hits[window].append(hit_rank([s.text for s in built.sources], q.answers) is not None)
        if progress:
            progress(i + 1, len(questions))
    return scores


def kb_search(kb: KnowledgeBase, mode: str) -> SearchFn:
    retriever = kb.retriever(mode=mode, min_relevance=0.0)
    return retriever.search


# -- answer metrics (SQuAD-style, character level for Chinese) --------------------------------------

_PUNCT = set(string.punctuation) | set("，。！？；：、“”‘’（）《》【】—…·「」『』")


def normalise_answer(text: str) -> str:
    text = re.sub(r"\[\d+\]", "", text.lower())
    return "".join(ch for ch in text if ch not in _PUNCT and not ch.isspace())


def _tokens(text: str) -> list[str]:
    """Characters for CJK, words for the rest (the usual CMRC/DRCD scoring)."""
    return re.findall(r"[\u3400-\u9fff]|[a-z0-9]+", re.sub(r"\[\d+\]", "", text.lower()))


def f1_score(prediction: str, gold: str) -> float:
    pred, ref = _tokens(prediction), _tokens(gold)
    common: dict[str, int] = {}
    for t in ref:
        common[t] = common.get(t, 0) + 1
    overlap = 0
    for t in pred:
        if common.get(t, 0) > 0:
            overlap += 1
            common[t] -= 1
    if not overlap:
        return 0.0
    precision, recall = overlap / len(pred), overlap / len(ref)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold: str) -> bool:
    return normalise_answer(prediction) == normalise_answer(gold)


def contains_answer(prediction: str, gold: str) -> bool:
    return bool(normalise_answer(gold)) and normalise_answer(gold) in normalise_answer(prediction)
