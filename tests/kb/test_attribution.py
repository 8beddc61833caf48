from kb_assistant.assistant import finish_answer
from kb_assistant.attribution import attribute, insert_markers, sentences, support
from kb_assistant.generators.base import ChatMessage
from kb_assistant.prompt import BuiltPrompt
from kb_assistant.types import Source

LEAVE = Source(1, "正式员工每年享有十五天带薪年假，入职不满一年的按月折算。", "/d/leave.txt", 0, 29, 0.9)
VPN = Source(2, "The VPN server address is vpn.example.org and it uses port 1194.", "/d/guide.md", 10, 74, 0.8)


def test_sentences_split_chinese_and_english() -> None:
    text = "第一句。第二句！Third one. Fourth"
    assert [text[a:b].strip() for a, b in sentences(text)] == ["第一句。", "第二句！", "Third one.", "Fourth"]


def test_support_is_overlap_share() -> None:
    assert support("员工每年享有十五天带薪年假", LEAVE.text) > 0.9
    assert support("The VPN uses port 1194", LEAVE.text) == 0.0


def test_each_sentence_goes_to_its_best_source() -> None:
    answer = "员工每年享有十五天带薪年假。The VPN uses port 1194. 股票代码是AAPL。"
    spans = attribute(answer, "问题", [LEAVE, VPN])
    assert [a.number for a in spans] == [1, 2, 0]  # the made-up claim stays unsupported
    assert insert_markers(answer, spans) == "员工每年享有十五天带薪年假。[1]The VPN uses port 1194.[2] 股票代码是AAPL。"


def test_short_answer_judged_with_its_question() -> None:
    spans = attribute("十五天", "员工每年有多少天带薪年假？", [VPN, LEAVE])
    assert [a.number for a in spans] == [2]


def test_model_markers_win_over_attribution() -> None:
    prompt = BuiltPrompt((ChatMessage("user", "q"),), (LEAVE, VPN), 10, 5, 100)
    answer = finish_answer("q", "Port 1194 [2].", prompt)
    assert [(c.number, c.inferred) for c in answer.citations] == [(2, False)]
    inferred = finish_answer("员工每年有多少天带薪年假？", "十五天。", prompt)
    assert [(c.number, c.inferred) for c in inferred.citations] == [(1, True)]
    assert inferred.text == "十五天。[1]"


TENNIS = Source(3, "Serena Williams won the women's singles U.S. Open in 1999. She was year-end No. 1 in 2002.",
                "/d/tennis.md", 0, 92, 0.7)


def test_markers_never_land_inside_abbreviations() -> None:
    answer = "She won the women's singles U.S. Open. She was year-end No. 1 in 2002."
    spans = attribute(answer, "What did she win?", [TENNIS])
    marked = insert_markers(answer, spans)
    assert "U.S.[" not in marked and "No.[" not in marked
    assert marked == "She won the women's singles U.S. Open.[1] She was year-end No. 1 in 2002.[1]"


def test_a_span_ending_inside_an_abbreviation_moves_to_the_sentence_end() -> None:
    from kb_assistant.attribution import Attribution

    answer = "She won the U.S. Open. Then she rested."
    cut = answer.index("U.S.") + len("U.S.")  # where a naive splitter would end the sentence
    assert insert_markers(answer, [Attribution(0, cut, 2, 0.9)]) == "She won the U.S. Open.[2] Then she rested."
    assert insert_markers(answer, [Attribution(0, cut, 2, 0.9), Attribution(0, 22, 1, 0.8)]) == (
        "She won the U.S. Open.[2][1] Then she rested.")
