"""Questions with several parts: splitting (both languages, and what must stay whole), the per-part merge,
and per-part search over a real knowledge base (FAISS + SQLite + BM25, hash embedder)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kb_assistant.assistant import Assistant
from kb_assistant.embedders import HashEmbedder
from kb_assistant.generators.echo import EchoGenerator
from kb_assistant.kb import KnowledgeBase
from kb_assistant.multipart import parts_hint, retrieve_parts, split_question
from kb_assistant.settings import load_settings
from kb_assistant.types import Source


@pytest.mark.parametrize(("question", "parts"), [
    ("A公司和B公司的总部分别在哪里？", ["A公司的总部在哪里？", "B公司的总部在哪里？"]),
    ("张三、李四和王五各是多少岁？", ["张三是多少岁？", "李四是多少岁？", "王五是多少岁？"]),
    ("2022年和2023年春节档首日票房冠军", ["2022年春节档首日票房冠军", "2023年春节档首日票房冠军"]),
    ("2022年和2023年春节档首日票房冠军分别是哪部电影？",
     ["2022年春节档首日票房冠军是哪部电影？", "2023年春节档首日票房冠军是哪部电影？"]),
    ("男子和女子的平均年收入分别是多少？", ["男子的平均年收入是多少？", "女子的平均年收入是多少？"]),
    ("黄鳍紫鱼和丝鳍紫鱼之间的区别是什么？", ["黄鳍紫鱼有什么特点？", "丝鳍紫鱼有什么特点？"]),
    ("大果西番莲和百香果相比，有什么不同？", ["大果西番莲有什么特点？", "百香果有什么特点？"]),
    ("苹果的价格是多少？香蕉产自哪里？", ["苹果的价格是多少？", "香蕉产自哪里？"]),
    ("报销需要几天内提交；另外，VPN端口是多少？", ["报销需要几天内提交？", "VPN端口是多少？"]),
    ("《煙硝下的教化記憶》與《馬祖俗諺析論》分別是誰所著？",
     ["《煙硝下的教化記憶》是誰所著？", "《馬祖俗諺析論》是誰所著？"]),
    ("compare FAISS and Milvus", ["What is FAISS?", "What is Milvus?"]),
    ("What is the difference between TCP and UDP?", ["What is TCP?", "What is UDP?"]),
    ("What are FAISS and Milvus?", ["What is FAISS?", "What is Milvus?"]),
    ("Who chaired the steering meeting, and when was the audit held?",
     ["Who chaired the steering meeting?", "When was the audit held?"]),
    ("How long must passwords be, and at what time are servers backed up?",
     ["How long must passwords be?", "At what time are servers backed up?"]),
    ("What is the capital of France? And who is its president?",
     ["What is the capital of France?", "Who is its president?"]),
    ("What were the populations of Paris and Lyon respectively?",
     ["What were the populations of Paris?", "What were the populations of Lyon?"]),
])
def test_questions_asking_for_several_things_split(question: str, parts: list[str]) -> None:
    assert split_question(question) == parts


@pytest.mark.parametrize("question", [
    "中国和平统一促进会的会长是谁？",  # 和 inside a name
    "卡爾梅克共和國的東部與哪一個海相鄰?",
    "刘六和刘七是何时在霸州起义的？",  # one event of two people: one answer
    "溫網和法網都是比什麼運動的比賽？",  # 都: one shared answer
    "在1990年和2000年之间发生了什么？",  # a range, not two fillers
    "椭球坐标系与其他三维正交坐标系不同的是什么？",
    "上萊茵省的南側與哪一個國家相比鄰?",
    "奈及利亞國內最有勢力的三個部族分別是豪薩-富拉尼、伊博，還有一個部族是?",
    "北朝幾個朝代中，哪個朝代最積極建築長城?",
    "後清平南、靖南二王率數萬鐵騎攻入哪裡；鄭成功奉敕南下勤王?",
    "愛因斯坦的論文除了《物體慣性與其所含能量有關嗎?》，還有哪一篇?",
    "Where is the research and development department?",
    "Where are the salt and pepper kept?",
    "What are salt and pepper?",
    "What are the rules for salt and pepper in the canteen?",
    "Who won the men's and women's singles in 1990?",
    "How many days of paid annual leave do full-time employees get?",
    "",
    "   ",
])
def test_single_questions_stay_whole(question: str) -> None:
    assert split_question(question) == [question]


def _src(i: int, score: float) -> Source:
    return Source(id=i, text=f"chunk {i}", source=f"d{i}.txt", start=0, end=7, score=score)


def test_merge_takes_each_parts_best_first_dedups_and_limits() -> None:
    found = {"A是什么？": [_src(1, 0.9), _src(2, 0.8), _src(3, 0.7), _src(4, 0.6)],
             "B是什么？": [_src(2, 0.5), _src(5, 0.4), _src(6, 0.3), _src(7, 0.2)]}
    calls: list[tuple[str, int]] = []

    def search(query: str, k: int) -> list[Source]:
        calls.append((query, k))
        return found[query][:k]

    sources, parts, serves = retrieve_parts(search, "A和B分别是什么？", 4)
    assert parts == ["A是什么？", "B是什么？"]
    assert calls == [("A是什么？", 4), ("B是什么？", 4)]
    # round-robin by rank: A1, B1(=2), A2(=2, taken), B2(5), A3, B3 ... at most k + parts - 1 = 5
    assert [s.id for s in sources] == [1, 2, 5, 3, 6]
    assert serves == [0, 1, 1, 0, 1]
    # each source keeps the score of the part search that found it (chunk 2: B found it first at 0.5)
    assert [s.score for s in sources] == [0.9, 0.5, 0.4, 0.7, 0.3]


def test_every_part_keeps_its_best_source_when_k_is_small() -> None:
    def search(query: str, k: int) -> list[Source]:
        base = {"A是什么？": 10, "B是什么？": 20, "C是什么？": 30}[query]
        return [_src(base + r, 1 - r / 10) for r in range(k)]

    sources, _, serves = retrieve_parts(search, "A、B和C分别是什么？", 1)
    assert [s.id for s in sources] == [10, 20, 30] and serves == [0, 1, 2]


def test_single_part_question_is_searched_once_unchanged() -> None:
    calls: list[tuple[str, int]] = []

    def search(query: str, k: int) -> list[Source]:
        calls.append((query, k))
        return [_src(1, 0.9), _src(2, 0.8)]

    sources, parts, serves = retrieve_parts(search, "刘六和刘七是何时起义的？", 5)
    assert calls == [("刘六和刘七是何时起义的？", 5)] and parts == ["刘六和刘七是何时起义的？"]
    assert [s.id for s in sources] == [1, 2] and serves == [0, 0]


def test_hint_lists_the_parts_in_the_questions_language() -> None:
    zh = parts_hint("A和B分别是什么？", ["A是什么？", "B是什么？"])
    assert "1) A是什么？" in zh and "2) B是什么？" in zh and "哪一部分" in zh
    en = parts_hint("compare X and Y", ["What is X?", "What is Y?"])
    assert "1) What is X?" in en and "2) What is Y?" in en and "which part" in en
    assert parts_hint("A是什么？", ["A是什么？"]) == ""
    # with the parts each packed source serves, every part names its own sources
    labelled = parts_hint("A和B分别是什么？", ["A是什么？", "B是什么？"], [0, 1, 0])
    assert "1) A是什么？（资料[1][3]）" in labelled and "2) B是什么？（资料[2]）" in labelled


# -- a real knowledge base ----------------------------------------------------------------------------

LEAVE = [  # many chunks about the first part's topic, so the joined question's results lean to it
    "年假制度：正式员工每年享有十五天带薪年假，年假需提前申请，年假天数按工龄增加。",
    "带薪年假申请流程：员工在系统中提交年假申请，经理审批年假后生效，年假不可折现。",
    "年假结转规定：未休完的带薪年假可结转到次年第一季度，员工年假过期作废。",
    "新员工年假：入职满一年的正式员工享有带薪年假，试用期员工没有年假。",
    "年假与病假：员工病假需医院证明，病假不占用带薪年假天数。",
]
VPN = "网络接入说明：VPN 网关 vpn.example.org 的端口为 1194，使用 OpenVPN 客户端连接。"
JOINED = "正式员工每年享有多少天带薪年假，年假怎么申请；另外，VPN网关端口是多少？"


@pytest.fixture
def kb(tmp_path: Path) -> Iterator[KnowledgeBase]:
    d = tmp_path / "docs"
    d.mkdir()
    for i, text in enumerate(LEAVE):
        (d / f"leave{i}.txt").write_text(text, encoding="utf-8")
    (d / "vpn.txt").write_text(VPN, encoding="utf-8")
    with KnowledgeBase.open(load_settings(chunk_size=200, chunk_overlap=20), "mp", HashEmbedder(256)) as kb:
        kb.index_paths([d])
        yield kb


@pytest.mark.parametrize(("mode", "k"), [("dense", 3), ("hybrid", 2)])
def test_the_second_parts_document_is_found_only_when_parts_are_searched(kb: KnowledgeBase, mode: str,
                                                                         k: int) -> None:
    search = kb.retriever(mode=mode, min_relevance=0.0).search
    plain = [Path(s.source).name for s in search(JOINED, k)]
    assert "vpn.txt" not in plain  # the joined question alone never reaches the VPN document
    assert len(split_question(JOINED)) == 2
    sources, _, serves = retrieve_parts(search, JOINED, k)
    names = [Path(s.source).name for s in sources]
    assert "vpn.txt" in names and any(n.startswith("leave") for n in names)
    assert serves[names.index("vpn.txt")] == 1  # served to the VPN part, to be labelled in the prompt
    assert len(sources) <= k + 1 and len({s.id for s in sources}) == len(sources)


def test_a_single_question_gets_exactly_what_search_gives(kb: KnowledgeBase) -> None:
    search = kb.retriever(min_relevance=0.0).search
    question = "正式员工每年享有多少天带薪年假？"
    sources, _, serves = retrieve_parts(search, question, 3)
    assert sources == search(question, 3) and serves == [0] * len(sources)


def test_focused_evidence_has_a_budget_for_each_part(tmp_path: Path, kb: KnowledgeBase) -> None:
    """The evidence budget is per part: at 128 tokens for the whole question the many leave sentences
    fill it and the VPN part's answer is cut; two parts get 256 and keep both answers."""
    settings = load_settings(data_dir=tmp_path / "data", chunk_size=200, chunk_overlap=20, evidence="sentences",
                             evidence_budget=128, check_answerable=False, min_relevance=0.0)
    prompt = Assistant(kb, EchoGenerator(), settings).plan(JOINED).prompt
    read = "".join(s.text for s in prompt.sources)
    assert "1194" in read and "十五天" in read


@pytest.mark.parametrize("question", ["和" * 5000, "A和B" * 1500 + "分别是什么？", "compare " + "x and y " * 700,
                                      "What ? and " * 500, "？" * 3000])
def test_long_or_odd_questions_give_at_most_a_few_nonempty_parts(question: str) -> None:
    parts = split_question(question)
    assert 1 <= len(parts) <= 4 and all(p.strip() for p in parts)
