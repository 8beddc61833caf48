"""Keyword tokens for BM25: jieba search-mode words for Chinese, whole ASCII words and numbers, no stopwords."""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
import warnings
from typing import Any

# CJK ideographs (BMP, extension A, compatibility, supplementary planes) go to jieba; everything else is
# split here so that numbers stay whole ("3.14", "1,194" -> "1194") whatever jieba would do with them.
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_TOKEN = re.compile(
    rf"(?P<cjk>[{_CJK}]+)"
    r"|(?P<num>\d+(?:,\d{3})*(?:\.\d+)?)"
    rf"|(?P<word>(?:(?![{_CJK}])[^\W\d_])(?:(?![{_CJK}])[^\W_])*(?:['’](?:(?![{_CJK}])[^\W\d_])+)?)"
)

# Function words and question words, Simplified and Traditional; small on purpose (BM25's IDF already
# discounts common words, this only removes the ones that match everywhere and carry nothing).
_ZH_STOP = """
的 地 得 了 着 著 过 過 是 在 和 与 與 及 或 而 且 并 並 也 都 就 又 还 還 之 其 此 这 這 那 哪 该 該 有 被 把 对 對
为 為 以 于 於 从 從 向 到 由 等 个 個 些 吗 嗎 呢 吧 啊 呀 么 麼 嘛 所 将 將 会 會 能 可 要 让 讓 给 給 但 则 則 即
这个 這個 那个 那個 哪个 哪個 这些 這些 那些 什么 什麼 甚么 甚麼 哪些 哪里 哪裡 哪儿 哪兒 为何 為何 为什么 為什麼
怎么 怎麼 怎样 怎樣 如何 多少 几 幾 谁 誰 何 的话 的話 以及 或者 而且 并且 並且 因为 因為 所以 但是 如果 虽然 雖然
一个 一個 我 你 他 她 它 我们 我們 你们 你們 他们 他們 她们 她們 它们 它們
"""
_EN_STOP = """
a an the and or but if then else of to in on at by for with from as into onto about over under than
is are was were be been being am do does did done have has had having it its this that these those there
here what which who whom whose when where why how not no nor so too very can could should would will shall
may might must i me my we our you your he him his she her they them their s t
"""
STOPWORDS: frozenset[str] = frozenset(_ZH_STOP.split()) | frozenset(_EN_STOP.split())

# Recorded by indexes built with these tokens; bump it whenever tokenize() output can change.
TOKENIZER_ID = "jieba-0.42-search-nohmm-v2-enstem"

_lock = threading.Lock()
_jieba: Any = None


def _segmenter() -> Any:
    """jieba with its dictionary loaded, once per process (import and load take about a second)."""
    global _jieba
    if _jieba is None:
        with _lock:
            if _jieba is None:
                with warnings.catch_warnings():
                    # jieba 0.42 imports pkg_resources and has invalid escapes: warnings, not our problem.
                    warnings.simplefilter("ignore")
                    try:
                        import jieba
                    except ImportError as exc:
                        from .errors import ModelUnavailableError

                        raise ModelUnavailableError(
                            "keyword search needs jieba; install it with `pip install jieba==0.42.1`"
                        ) from exc
                    jieba.setLogLevel(logging.WARNING)
                    jieba.initialize()
                _jieba = jieba
    return _jieba


_VOWEL = re.compile("[aeiouy]")
_LY_KEPT = frozenset("abfip")  # apply, assembly, butterfly, family, Italy: no adverb's -ly


def stem(word: str) -> str:
    """A light English stem, the same for a word's common forms ("closes", "closed", "closing" -> "clos";
    "replaced" -> "replac"; "studies" -> "study"; "months" -> "month"; "monthly" -> "month"): answers and
    questions rarely use the source's exact form. Conservative on purpose: only the suffixes of plurals,
    tenses, -ing and an adverb's -ly, never leaving a stem without a vowel ("string", "speed" stay);
    words of four letters or fewer stay as they are. Digits are left alone."""
    if len(word) <= 4 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 5:
        word = word[:-3] + "y"
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        rest = word[: -len(suffix)]
        if word.endswith(suffix) and len(rest) >= 3 and _VOWEL.search(rest) and not word.endswith("eed"):
            if len(rest) > 3 and rest[-1] == rest[-2] and rest[-1] not in "lsz":
                rest = rest[:-1]  # "stopped" -> "stop"
            word = rest[:-1] + "y" if suffix == "ed" and rest.endswith("i") else rest  # "studied" -> "study"
            break
    else:
        if word.endswith("ly") and len(word) >= 6 and word[-3] not in _LY_KEPT:
            word = word[:-2]
    return word[:-1] if word.endswith("e") and len(word) > 4 else word


def normalize(text: str) -> str:
    """NFKC (full-width letters, digits and punctuation to half-width) and lower case."""
    return unicodedata.normalize("NFKC", text).lower()


def tokenize(text: str) -> list[str]:
    """BM25 terms of ``text`` in order, repeats kept (they are term frequencies).

    Chinese runs are cut by jieba in search mode (a long word plus its dictionary sub-words, so a query for
    "北京" matches a chunk saying "北京大学"); ASCII words are lower-cased and stemmed ("backups" finds
    "backup", "closing" finds "closes"), numbers kept whole with thousands separators removed; stopwords and
    punctuation are dropped.
    """
    tokens: list[str] = []
    for match in _TOKEN.finditer(normalize(text)):
        kind = match.lastgroup
        piece = match.group()
        if kind == "cjk":
            # HMM off: its new-word guesses depend on context, so a query and a chunk could cut the same
            # phrase differently; measured on CMRC/DRCD it is also 2x slower and no better (bench_bm25.py).
            words = _segmenter().cut_for_search(piece, HMM=False)
            tokens.extend(w for w in words if w not in STOPWORDS)
        elif kind == "num":
            tokens.append(piece.replace(",", ""))
        elif piece not in STOPWORDS:
            tokens.append(stem(piece) if piece.isascii() else piece)
    return tokens
