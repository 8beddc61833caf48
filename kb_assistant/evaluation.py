"""``kb eval``: retrieval and answer quality on any SQuAD-format file, in a scratch knowledge base."""

from __future__ import annotations

import json
import re
import statistics
import time
import unicodedata
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
    answers: tuple[str, ...]  # gold texts: any one counts, or every one for a multi-part question
    doc: str  # file name of the paragraph the question was asked about
    qid: str = ""
    docs: tuple[str, ...] = ()  # every paragraph holding a part of the answer (multi-part questions)
    all_parts: bool = False  # the answer must hold every entry of ``answers`` (a qa id ending "-multi")

    @property
    def gold_docs(self) -> tuple[str, ...]:
        return self.docs or (self.doc,)


@dataclass(frozen=True)
class EvalSet:
    """A SQuAD file as documents: paragraph ``i`` is file ``p{i:05d}.txt`` of article ``articles[i]``."""

    paragraphs: list[str]
    articles: list[int]
    questions: list[EvalQuestion]  # answerable ones
    unanswerable: list[EvalQuestion]  # qas with no answer text: asked over their own paragraph

    @property
    def names(self) -> list[str]:
        return [paragraph_name(i) for i in range(len(self.paragraphs))]


def paragraph_name(i: int) -> str:
    return f"p{i:05d}.txt"


def load_squad_set(path: str | Path, *, limit_paragraphs: int | None = None) -> EvalSet:
    """Read a SQuAD-format file. A qa id ending ``-multi`` needs every answer entry; an entry may name
    the paragraph it lies in (``"context_id"``, a paragraph's ``id``) when that is not the qa's own."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        articles = data["data"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KBError(f"{path}: not a readable SQuAD-format JSON file ({exc}); expected data -> paragraphs "
                      "-> context, qas") from None
    out = EvalSet([], [], [], [])
    ids: dict[str, str] = {}
    pending: list[tuple[dict[str, Any], str]] = []
    for a, article in enumerate(articles):
        for para in article["paragraphs"]:
            if limit_paragraphs is not None and len(out.paragraphs) >= limit_paragraphs:
                break
            name = paragraph_name(len(out.paragraphs))
            out.paragraphs.append(para["context"])
            out.articles.append(a)
            if "id" in para:
                ids[str(para["id"])] = name
            pending.extend((qa, name) for qa in para["qas"])
    for qa, name in pending:
        answers = tuple(dict.fromkeys(x["text"].strip() for x in qa.get("answers", []) if x["text"].strip()))
        qid = str(qa.get("id", ""))
        docs = tuple(dict.fromkeys(ids.get(str(x.get("context_id")), name) for x in qa.get("answers", [])))
        multi = qid.endswith("-multi")
        q = EvalQuestion(qa["question"], answers, name, qid, docs if multi else (), multi)
        (out.questions if answers else out.unanswerable).append(q)
    return out


def load_squad(path: str | Path, *, limit_paragraphs: int | None = None) -> tuple[list[str], list[EvalQuestion]]:
    """Paragraph texts (paragraph ``i`` becomes file ``p{i:05d}.txt``) and questions with gold answers."""
    data = load_squad_set(path, limit_paragraphs=limit_paragraphs)
    return data.paragraphs, data.questions


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


# -- answer metrics --------------------------------------------------------------------------------
# Gold and answer are compared after the same normalisation: NFKC (full-width letters, digits and
# punctuation become their ASCII forms), lower case, citation markers, punctuation and spacing removed.
# F1 counts CJK characters one by one and other text by words (letters/digits runs), the usual
# CMRC/DRCD and SQuAD scoring: a Chinese word split into characters, an English one kept whole, so
# "port 1194" against "1194" is 2/3 and not a near-miss by shared letters.

_MARKER = re.compile(r"[\[【]\d+(?:[,，、\s]*\d+)*[\]】]")
_ARTICLES = {"a", "an", "the"}


def _fold(text: str) -> str:
    return _MARKER.sub("", unicodedata.normalize("NFKC", text)).lower()


def normalise_answer(text: str) -> str:
    """Width-folded, lower-cased, without markers, punctuation, symbols like quotes, or spaces."""
    return "".join(ch for ch in _fold(text) if not ch.isspace() and not unicodedata.category(ch).startswith("P"))


def _tokens(text: str) -> list[str]:
    """Characters for CJK, words for the rest, English articles dropped (SQuAD)."""
    cjk = "\u3400-\u9fff\uf900-\ufaff"
    return [t for t in re.findall(f"[{cjk}]|[^\\W_{cjk}]+", _fold(text)) if t not in _ARTICLES]


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
