import pytest

from kb_assistant.sentences import sentence_cuts, split_sentences


def pieces(text: str) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text)]


def test_chinese_and_english_ends() -> None:
    assert pieces("第一句。第二句！Third one. Fourth") == ["第一句。", "第二句！", "Third one.", "Fourth"]
    assert pieces("“你好。”他说。a 设为 8；b 取 32") == ["“你好。”", "他说。", "a 设为 8；", "b 取 32"]
    assert pieces("He said \"Stop.\" Then left. Ok? Yes!") == ['He said "Stop."', "Then left.", "Ok?", "Yes!"]
    assert pieces("- one\n- two\n\n") == ["- one", "- two"]
    assert pieces("Go to vpn.example.org. It works.") == ["Go to vpn.example.org.", "It works."]
    assert pieces("1. 年假十五天。\n2. Port 1194.") == ["1. 年假十五天。", "2. Port 1194."]


@pytest.mark.parametrize("text", [
    "She won the women's singles U.S. Open in 1999.",
    "She was year-end No. 1 in 2002.",
    "Fruit, e.g. apples, is healthy.",
    "It costs 3.5 dollars and version 1.2.3 fixes it.",
    "J. R. R. Tolkien wrote it.",
    "Mr. Smith met Dr. Jones at vpn.example.org today.",
    "See Fig. 3 and p. 12 for details.",
])
def test_no_cut_inside_abbreviations_numbers_or_initials(text: str) -> None:
    assert pieces(text) == [text]


def test_etc_ends_a_sentence_only_before_a_capital() -> None:
    assert pieces("Apples, pears, etc. are fruit. We like fruit etc. Next one.") == [
        "Apples, pears, etc. are fruit.", "We like fruit etc.", "Next one."]


def test_spans_exclude_whitespace_and_cuts_skip_the_end() -> None:
    text = "  One. Two.  "
    assert split_sentences(text) == [(2, 6), (7, 11)]
    assert sentence_cuts(text) == [6]
    assert split_sentences("") == [] and split_sentences("   \n ") == []
