"""A reply that hands the question back gets the best-matching source sentence quoted after it."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from kb_assistant.assistant import Assistant
from kb_assistant.embedders import HashEmbedder
from kb_assistant.generators.base import ChatMessage, Generator
from kb_assistant.kb import KnowledgeBase
from kb_assistant.nonanswer import restates_question
from kb_assistant.settings import load_settings


@pytest.mark.parametrize("question, reply", [
    # seen from the bundled 0.5B model on DRCD and our own sets
    ("馬祖人相信將蓋有神諱、廟印的布符貼在門上會有什麼效果？", "馬祖人相信蓋有神諱、廟印的布符貼在門上會有什麼效果？"),
    ("注册产品后保修期延长到几年？", "根据提供的文档内容，注册产品后保修期延长到几年。"),
    ("馬祖的哪邊還能看的到最完整的石屋聚落？", "馬祖的哪邊還能看的到最完整的石屋聚落？[1]"),
    ("What is the secret mascot of team 7?", "The secret mascot of team 7."),
    ("第三章讲了什么？", "第三章讲了。[1]"),
    ("Which port does the VPN use?", "Which port does the VPN use? [1]"),
    ("Which port does the VPN use?", ""),
])
def test_replies_that_restate_the_question(question: str, reply: str) -> None:
    assert restates_question(question, reply)


@pytest.mark.parametrize("question, reply", [
    ("陸特和漢斯雷頓開創了哪一地區對梵語的學術研究？", "德國[1]"),
    ("搭台馬輪從南竿到東引區要花費多少時間？", "10分[2]"),
    ("What is the secret mascot of team 7?", "The secret mascot of team 7 is the tapir."),
    ("Which team won?", "The team which won was Ajax."),
    ("尤金袋鼠的体重大约是多少？", "尤金袋鼠的体重大约是5公斤。"),
    ("How much does the Aurora X2 weigh?", "It weighs 1,500 kg [1]."),
    ("为什么要备份？", "这就是为什么每天备份：防止数据丢失。"),
    ("When is the fire drill?", "The fire drill is in May."),  # a month that is also a stopword
    ("Which team runs the help desk?", "The IT team runs the help desk."),
])
def test_replies_that_answer(question: str, reply: str) -> None:
    assert not restates_question(question, reply)


class Parrot(Generator):
    """A model that always says the same thing (the behaviour under test is the assistant's)."""

    name = "parrot"
    follows_citation_instructions = False

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.context_window = 4096

    def render(self, messages: Sequence[ChatMessage]) -> str:
        return "\n".join(m.content for m in messages)

    def count_tokens(self, text: str) -> int:
        return len(text)

    def _stream_prompt(self, prompt: str, *, max_tokens: int, temperature: float,
                       stop_event: threading.Event | None) -> Iterator[str]:
        yield self.reply


@pytest.fixture
def kb(tmp_path: Path) -> Iterator[KnowledgeBase]:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text("# IT\n\nThe VPN server uses port 1194. Backups rotate every 90 days.\n")
    (docs / "canteen.txt").write_text("食堂开放时间为每天上午七点到晚上八点。食堂位于二号楼一层。", encoding="utf-8")
    settings = load_settings(chunk_size=120, chunk_overlap=20)
    with KnowledgeBase.open(settings, "t", HashEmbedder(256)) as kb:
        kb.index_paths([docs])
        yield kb


def test_a_restated_question_is_followed_by_the_quoted_source_sentence(kb: KnowledgeBase) -> None:
    question = "Which port does the VPN server use?"
    stream = Assistant(kb, Parrot("Which port does the VPN server use? [1]"), kb.settings).ask(question)
    pieces = list(stream)
    answer = stream.result()
    assert len(pieces) == 2 and pieces[1].startswith('\n\nFrom the source: "The VPN server uses port 1194."')
    assert "1194" in answer.text
    assert [c.source.file_name for c in answer.citations] == ["guide.md"]


def test_chinese_question_gets_a_chinese_quote(kb: KnowledgeBase) -> None:
    stream = Assistant(kb, Parrot("食堂什么时间开放？"), kb.settings).ask("食堂什么时间开放？")
    answer = stream.result()
    assert "资料原文：「食堂开放时间为每天上午七点到晚上八点。」" in answer.text
    assert any(c.source.file_name == "canteen.txt" for c in answer.citations)


def test_an_answer_is_left_alone(kb: KnowledgeBase) -> None:
    stream = Assistant(kb, Parrot("Port 1194 [1]."), kb.settings).ask("Which port does the VPN server use?")
    pieces = list(stream)
    assert pieces == ["Port 1194 [1]."]


def test_a_reply_no_source_supports_is_followed_by_the_quoted_source_sentence(kb: KnowledgeBase) -> None:
    """The model answers from elsewhere (an invented port): its sentence stays, marked unsupported, and
    the source sentence that matches the question follows, quoted and cited."""
    question = "Which port does the VPN server use?"
    stream = Assistant(kb, Parrot("The VPN server uses port 8080."), kb.settings).ask(question)
    pieces = list(stream)
    answer = stream.result()
    assert pieces[0] == "The VPN server uses port 8080."
    assert pieces[1].startswith('\n\nFrom the source: "The VPN server uses port 1194."')
    assert [c.supported for c in answer.claims] == [False, True]
    assert "8080" in answer.claims[0].reason
    assert [c.source.file_name for c in answer.citations] == ["guide.md"]


def test_without_the_support_check_an_unsupported_reply_is_left_alone(kb: KnowledgeBase) -> None:
    settings = kb.settings.model_copy(update={"check_support": False})
    stream = Assistant(kb, Parrot("The VPN server uses port 8080."), settings).ask("Which port does the VPN use?")
    assert list(stream) == ["The VPN server uses port 8080."]


OPS = ("The VPN server uses port 1194. Backups rotate every 90 days. The canteen opens at seven. "
       "Printers on floor two need a badge. Visitors sign in at the front desk. The fire drill is in May.")


@pytest.mark.parametrize("reply, quoted", [
    ("Printers on floor two need a badge.", True),  # a true sentence of the source, but not on the VPN
    ("The VPN server uses port 1194.", False),  # the sentence that answers
])
def test_a_reply_resting_on_a_sentence_far_from_the_question_gets_the_quote(tmp_path: Path, reply: str,
                                                                           quoted: bool) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ops.md").write_text(OPS + "\n")
    with KnowledgeBase.open(load_settings(chunk_size=400), "ops", HashEmbedder(256)) as kb:
        kb.index_paths([docs])
        stream = Assistant(kb, Parrot(reply), kb.settings).ask("Which port does the VPN server use?")
        pieces = list(stream)
        answer = stream.result()
    assert answer.claims[0].supported  # the model's sentence is in the source either way
    assert (len(pieces) == 2) == quoted
    if quoted:
        assert pieces[1].startswith('\n\nFrom the source: "The VPN server uses port 1194.')
