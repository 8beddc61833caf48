"""Asked in Traditional Chinese, the answer comes back in Traditional script, whatever the model wrote."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kb_assistant.assistant import AnswerStream, Assistant
from kb_assistant.embedders import HashEmbedder
from kb_assistant.kb import KnowledgeBase
from kb_assistant.prompt import BuiltPrompt
from kb_assistant.script import is_traditional, script_follower, to_traditional
from kb_assistant.settings import load_settings

from .test_nonanswer import Parrot


@pytest.mark.parametrize("text, expected", [
    # seen from the bundled 0.5B model on DRCD: phrases (根据, 位于), Simplified-only characters (马, 资)
    ("根据资料,马祖列島位于臺灣海峽正北方", "根據資料,馬祖列島位於臺灣海峽正北方"),
    ("头发", "頭髮"),  # 发 is 髮 in hair, 發 elsewhere: the phrase decides
    ("发现", "發現"),
    # characters valid in both scripts stay as written outside a phrase: village names keep 后 and 里
    ("后沃村和坂里村", "后沃村和坂里村"),
    ("后来", "後來"),
    # Taiwan's forms
    ("这里有一群人", "這裡有一群人"),
    ("English and 123 stay.", "English and 123 stay."),
])
def test_to_traditional(text: str, expected: str) -> None:
    assert to_traditional(text) == expected


def test_the_documents_own_words_are_kept() -> None:
    # 周期 is Traditional too (Taiwan's usage would be 週期): a document that writes it keeps it
    assert to_traditional("一太阴周期") == "一太陰週期"
    assert to_traditional("一太阴周期", kept="19年為一太陰周期") == "一太陰周期"
    # Simplified sources' words are converted: the answer is in one script
    follow = script_follower("資料在哪裡？", ["根据资料，周期"])
    assert follow is not None and follow("根据资料的周期") == "根據資料的週期"


def test_the_script_of_a_question() -> None:
    assert is_traditional("馬祖列島的所有島嶼當中哪一部分是最南端的？")
    assert is_traditional("這群人在哪裡？")
    assert not is_traditional("马祖列岛的所有岛屿当中哪一部分是最南端的？")
    assert not is_traditional("Which island is the southernmost?")
    assert not is_traditional("八月十五")  # no character tells: left alone
    assert script_follower("纽西兰鸡毛松有什么用途？") is None


def test_a_phrase_split_across_pieces_still_converts() -> None:
    follow = script_follower("資料在哪裡？")
    assert follow is not None
    assert "".join(follow(p) for p in ["根", "据资", "料，他的头", "发。"]) == "根據資料，他的頭髮。"


class Mixed(Parrot):
    """The same reply, streamed a character at a time (as the bundled model streams)."""

    def _stream_prompt(self, prompt: str, *, max_tokens: int, temperature: float,
                       stop_event: threading.Event | None) -> Iterator[str]:
        yield from self.reply


@pytest.fixture
def kb(tmp_path: Path) -> Iterator[KnowledgeBase]:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "馬祖.txt").write_text("馬祖列島隸屬中華民國，位於臺灣海峽正北方，距中國大陸最近點約9.25公里。"
                                  "后沃村位於北竿島。", encoding="utf-8")
    (docs / "马祖.txt").write_text("马祖列岛距中国大陆最近点约9.25公里。", encoding="utf-8")
    settings = load_settings(chunk_size=200, chunk_overlap=20, check_answerable=False)
    with KnowledgeBase.open(settings, "t", HashEmbedder(256)) as kb:
        kb.index_paths([docs])
        yield kb


def test_a_traditional_question_gets_a_traditional_answer(kb: KnowledgeBase) -> None:
    reply = "根据资料，马祖列岛距中国大陆最近点约9.25公里。"
    assistant = Assistant(kb, Mixed(reply), kb.settings)
    stream = assistant.ask("馬祖列島距離中國大陸最近有多遠？")
    shown = "".join(stream)
    answer = stream.result()
    assert shown.startswith("根據資料，馬祖列島距中國大陸最近點約9.25公里。")
    assert answer.text.startswith(shown.split("[")[0].rstrip("。"))
    assert answer.citations and answer.citations[0].source.source.endswith("馬祖.txt")


def test_a_restated_question_gets_a_traditional_label_and_a_verbatim_quote(kb: KnowledgeBase) -> None:
    settings = kb.settings.model_copy(update={"check_answerable": True})
    stream = Assistant(kb, Mixed("后沃村位于哪里？"), settings).ask("后沃村位於哪個島？")
    shown = "".join(stream)
    assert shown.startswith("后沃村位於哪裡？")
    assert "資料原文：「" in shown and "后沃村位於北竿島。" in shown


def test_a_simplified_question_keeps_the_model_s_words(kb: KnowledgeBase) -> None:
    reply = "根据资料，马祖列岛距中国大陆最近点约9.25公里。"
    stream = Assistant(kb, Mixed(reply), kb.settings).ask("马祖列岛距离中国大陆最近有多远？")
    assert "".join(stream).startswith(reply)


def test_the_quoted_fallback_is_verbatim() -> None:
    from kb_assistant.nonanswer import Fallback

    quoted = "\n\n資料原文：「马祖列岛距中国大陆最近点约9.25公里。」[1]"  # a Simplified document, quoted
    prompt = BuiltPrompt(messages=(), sources=(), prompt_tokens=0, max_new_tokens=16, context_window=64)
    stream = AnswerStream("馬祖列島距離中國大陸有多遠？", prompt, iter(["马祖列岛距离", "中国大陆有多远？"]),
                          fallback=Fallback(quoted))
    assert "".join(stream) == "馬祖列島距離中國大陸有多遠？" + quoted
