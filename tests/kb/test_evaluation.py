"""``kb eval`` on a small SQuAD file with the stand-in embedder and generator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kb_assistant.cli import main
from kb_assistant.evaluation import contains_answer, exact_match, f1_score, hit_rank, load_squad

SQUAD = {
    "data": [{"paragraphs": [
        {"context": "北京是中华人民共和国的首都，位于华北平原。北京有三千多年的建城史。",
         "qas": [{"question": "中国的首都是哪里？", "id": "1", "answers": [{"text": "北京", "answer_start": 0}]}]},
        {"context": "The VPN gateway listens on port 1194. It was installed in 2019.",
         "qas": [{"question": "Which port does the VPN gateway listen on?", "id": "2",
                  "answers": [{"text": "1194", "answer_start": 32}]},
                 {"question": "no answer", "id": "3", "answers": [{"text": " ", "answer_start": 0}]}]},
        {"context": "食堂开放时间为每天上午七点到晚上八点。",
         "qas": [{"question": "食堂几点关门？", "id": "4", "answers": [{"text": "晚上八点", "answer_start": 11}]}]},
    ]}]
}


@pytest.fixture
def squad_file(tmp_path: Path) -> Path:
    path = tmp_path / "mini.json"
    path.write_text(json.dumps(SQUAD, ensure_ascii=False), encoding="utf-8")
    return path


def test_load_squad_skips_blank_answers(squad_file: Path) -> None:
    paragraphs, questions = load_squad(squad_file)
    assert len(paragraphs) == 3 and len(questions) == 3
    assert questions[1].answers == ("1194",) and questions[1].doc == "p00001.txt"


def test_metrics() -> None:
    assert hit_rank(["a", "xx北京", "北京"], ["北京"]) == 2 and hit_rank(["a"], ["b"]) is None
    assert exact_match("北京。", "北京") and not exact_match("是北京", "北京")
    assert f1_score("首都是北京", "北京") == pytest.approx(2 * (2 / 5) * 1 / (2 / 5 + 1))
    assert f1_score("port 1194 [1]", "1194") == pytest.approx(2 / 3)
    assert contains_answer("答案是晚上八点[1]。", "晚上八点")


def test_kb_eval_retrieval_and_answers(squad_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workdir = tmp_path / "work"
    argv = ["eval", str(squad_file), "--json", "--workdir", str(workdir), "--context-window", "700",
            "--context-window", "2048", "--answer-window", "2048", "--generate", "3"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["questions"] == 3 and [r["name"] for r in result["retrieval"]] == ["hybrid", "dense", "bm25"]
    hybrid = result["retrieval"][0]
    assert hybrid["hit@10"] == 1.0 and hybrid["overflows"] == 0
    assert hybrid["budget_recall@2048"] == 1.0
    assert hybrid["budget_recall@700"] <= hybrid["budget_recall@2048"]
    [answers] = result["answers"]
    assert answers["overflows"] == 0 and answers["contains_gold"] > 0
    assert answers["citation_precision"] is not None
    # a second run reuses the scratch knowledge base (nothing re-embedded) and prints a table
    assert main(["eval", str(squad_file), "--retrieval-only", "--workdir", str(workdir), "--modes", "dense"]) == 0
    out = capsys.readouterr().out
    assert "hit@1" in out and "dense" in out
