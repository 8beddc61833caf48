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
