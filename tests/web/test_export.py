"""Exports: a conversation as Markdown with citations; feedback as files kb finetune and kb eval read."""

from __future__ import annotations

import json
from pathlib import Path

from kb_assistant.cli import main
from kb_assistant.evaluation import load_squad
from kb_assistant.finetune.data import load_examples
from kb_assistant.types import Answer, Citation, Source
from kb_assistant.web.export import conversation_markdown, feedback_jsonl, feedback_squad
from kb_assistant.web.records import ClaimView
from kb_assistant.web.store import AppStore

SRC = Source(7, "第一句。正式员工每年享有十五天带薪年假。", "/docs/规定.pdf", 10, 30, 0.83, page=2)
WEAK = Source(8, "打赏 扫一扫 <script>x</script>", "/docs/blog.html", 0, 6, 0.23)


def answered(store: AppStore, question: str, text: str, *, cite: bool = True) -> int:
    conv = store.create_conversation("kb")
    turn = store.add_turn(conv.id, question)
    citations = (Citation(1, SRC, False, 0.9, 14, 30),) if cite else ()
    store.finish_turn(turn, Answer(question, text, (SRC, WEAK), citations, 100),
                      (ClaimView("还有奖金。", False),) if "奖金" in text else ())
    return conv.id


def test_a_conversation_exports_as_markdown_with_its_citations(tmp_path: Path) -> None:
    store = AppStore(tmp_path / "app.sqlite")
    conv_id = answered(store, "年假有几天？", "十五天[1]。还有奖金。")
    store.add_turn(conv_id, "病假呢？")
    store.mark_interrupted(store.turns(conv_id)[-1].id)
    md = conversation_markdown(store.conversation(conv_id), store.turns(conv_id))
    assert md.startswith("# 年假有几天？\n")
    assert "## 1. 年假有几天？" in md and "十五天[1]。还有奖金。 ⚠ *(not supported by the sources)*" in md
    assert "- [1] 规定.pdf, p. 2 (/docs/规定.pdf) · relevance 0.83 (strong)" in md
    assert "  > 正式员工每年享有十五天带薪年假。" in md  # the supporting sentence, not the whole chunk
    assert "## 2. 病假呢？" in md and "no answer: interrupted" in md
    assert "打赏" not in md  # uncited sources stay out


def test_feedback_jsonl_is_read_by_finetune_and_squad_by_eval(tmp_path: Path) -> None:
    store = AppStore(tmp_path / "app.sqlite")
    for conv_id, rating in ((answered(store, "年假有几天？", "十五天[1]。"), "helpful"),
                            (answered(store, "谁发工资？", "财务部。", cite=False), "helpful"),
                            (answered(store, "年终奖？", "十五天[1]。还有奖金。"), "wrong")):
        store.give_feedback(store.turns(conv_id)[0], "kb", rating)
    rows = store.feedback()
    lines = [json.loads(line) for line in feedback_jsonl(rows).splitlines()]
    assert [r["rating"] for r in lines] == ["helpful", "helpful", "wrong"]
    first = lines[0]
    assert (first["question"], first["answer"]) == ("年假有几天？", "十五天[1]。")
    span = first["answers"][0]
    assert span["text"] == "正式员工每年享有十五天带薪年假。"
    assert first["context"][span["answer_start"]:].startswith(span["text"])
    assert lines[2]["unsupported"] == ["还有奖金。"] and lines[0]["sources"][1]["score"] == 0.23

    helpful = tmp_path / "helpful.jsonl"
    helpful.write_text(feedback_jsonl(store.feedback(rating="helpful")), encoding="utf-8")
    examples = load_examples([helpful])
    assert [(e.prompt, e.target) for e in examples] == [("年假有几天？", "十五天[1]。"), ("谁发工资？", "财务部。")]

    data, skipped = feedback_squad(rows)
    squad = tmp_path / "feedback.json"
    squad.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    paragraphs, questions = load_squad(squad)
    assert skipped == 1  # the helpful answer without a located supporting sentence has no gold span
    assert [(q.text, q.answers) for q in questions] == [("年假有几天？", ("正式员工每年享有十五天带薪年假。",))]
    assert paragraphs == [SRC.text]


def test_kb_feedback_export(tmp_path: Path, isolated_data_dir: Path, capsys) -> None:  # noqa: ANN001
    assert main(["feedback", "export"]) == 1
    assert "no feedback yet" in capsys.readouterr().err
    store = AppStore(isolated_data_dir / "app.sqlite")
    store.give_feedback(store.turns(answered(store, "年假有几天？", "十五天[1]。"))[0], "kb", "helpful")
    store.give_feedback(store.turns(answered(store, "年终奖？", "十五天[1]。"))[0], "kb", "wrong")
    assert main(["feedback", "export", "--rating", "helpful"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["question"] for line in out] == ["年假有几天？"]
    target = tmp_path / "eval.json"
    assert main(["feedback", "export", "--format", "squad", "-o", str(target)]) == 0
    assert [q.text for q in load_squad(target)[1]] == ["年假有几天？"]
