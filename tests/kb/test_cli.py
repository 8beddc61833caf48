"""The ``kb`` command line end to end in-process, on the stand-in embedder and generator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kb_assistant.cli import main


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    d.mkdir()
    (d / "a.txt").write_text("年假政策：正式员工每年享有十五天带薪年假。", encoding="utf-8")
    (d / "b.md").write_text("The VPN server uses port 1194.\n")
    return d


def test_help_teaches(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for word in ("index", "ask", "chat", "search", "list", "examples"):
        assert word in out


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["ask"])
    assert exc.value.code == 2


def test_index_ask_search_list(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", str(folder), "--kb", "t", "--quiet"]) == 0
    assert "2 added" in capsys.readouterr().out

    assert main(["ask", "VPN port?", "--kb", "t", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) >= {"answer", "citations", "sources", "prompt_tokens"}
    assert result["citations"][0]["file"].endswith("b.md")
    assert "[1]" in result["answer"]

    assert main(["ask", "年假有几天？", "--kb", "t"]) == 0
    out = capsys.readouterr().out
    assert "十五天" in out and "a.txt" in out

    assert main(["search", "VPN", "--kb", "t", "--json", "--top-k", "1"]) == 0
    [hit] = json.loads(capsys.readouterr().out)
    assert hit["file"].endswith("b.md") and hit["rank"] == 1

    assert main(["list"]) == 0
    assert capsys.readouterr().out.split() == ["t"]
    assert main(["list", "--kb", "t"]) == 0
    assert "2 documents" in capsys.readouterr().out


def test_failures_exit_1_with_one_line_message(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (folder / "empty.txt").write_text("")
    assert main(["index", str(folder), "--kb", "t", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "empty.txt" in err and "failed" in err
    assert main(["ask", "q", "--kb", "nope"]) == 1
    assert capsys.readouterr().err.strip().startswith("error: no knowledge base named 'nope'")


def test_empty_kb_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "e.txt").write_text("")
    main(["index", str(tmp_path / "e.txt"), "--kb", "empty", "--quiet"])
    capsys.readouterr()
    assert main(["ask", "q", "--kb", "empty"]) == 1
    assert "is empty" in capsys.readouterr().err


def test_chat_multi_turn_clear_and_stop(folder: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    main(["index", str(folder), "--kb", "t", "--quiet"])
    capsys.readouterr()
    lines = iter(["VPN port?", "clear", "年假有几天？", "stop"])
    monkeypatch.setattr("builtins.input", lambda _prompt="": next(lines))
    assert main(["chat", "--kb", "t"]) == 0
    captured = capsys.readouterr()
    assert "1194" in captured.out and "十五天" in captured.out
    assert "history cleared" in captured.err


def test_chat_ends_on_eof(folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    main(["index", str(folder), "--kb", "t", "--quiet"])

    def eof(_prompt: str = "") -> str:
        raise EOFError

    monkeypatch.setattr("builtins.input", eof)
    assert main(["chat", "--kb", "t"]) == 0


def test_not_found_prints_no_sources(folder: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    main(["index", str(folder), "--kb", "t", "--quiet"])
    capsys.readouterr()
    monkeypatch.setenv("KB_MIN_RELEVANCE", "1.0")
    assert main(["ask", "量子计算机的原理？", "--kb", "t"]) == 0
    out = capsys.readouterr().out
    assert "没有找到" in out and "sources" not in out


def test_search_uses_the_same_retriever_settings_as_ask(folder: Path, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    main(["index", str(folder), "--kb", "t", "--quiet"])
    capsys.readouterr()
    monkeypatch.setenv("KB_RETRIEVAL_MODE", "bm25")
    assert main(["search", "VPN", "--kb", "t", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["file"].endswith("b.md")
    monkeypatch.setenv("KB_MIN_RELEVANCE", "1.0")
    assert main(["search", "量子计算", "--kb", "t"]) == 0
    assert "nothing found at relevance >= 1.0" in capsys.readouterr().out


def test_store_chosen_per_knowledge_base(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("milvus_lite", reason="pip install pymilvus milvus-lite")
    from kb_assistant.kb import StoreRecord, read_manifest

    shared = tmp_path / "lite" / "all.db"
    assert main(["kb", "create", "m", "--store", "milvus", "--uri", str(shared)]) == 0
    assert f"store milvus at {shared}" in capsys.readouterr().out
    assert main(["index", str(folder), "--kb", "m", "--quiet"]) == 0  # flags are for new kbs only
    assert main(["index", str(folder), "--kb", "f", "--quiet"]) == 0  # the default store
    capsys.readouterr()
    assert main(["kb", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert (rows["m"]["backend"], rows["m"]["chunks"]) == ("milvus", 2)
    assert (rows["f"]["backend"], rows["f"]["chunks"]) == ("faiss", 2)
    from kb_assistant.settings import load_settings

    manifest = read_manifest(load_settings().kb_root / "m")
    assert manifest is not None and manifest.store == StoreRecord("milvus", str(shared))  # the one record
    assert not (load_settings().kb_root / "m" / "store" / "milvus.json").exists()
    assert main(["search", "VPN port", "--kb", "m", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["file"].endswith("b.md")
    assert main(["kb", "list"]) == 0
    assert "milvus" in capsys.readouterr().out


def test_ask_marks_unsupported_sentences_and_related_passages(capsys: pytest.CaptureFixture[str]) -> None:
    from kb_assistant.cli.chat import print_sources
    from kb_assistant.types import Answer, Citation, Claim, Source

    src = Source(1, "The VPN server uses port 1194.", "/d/vpn.md", 0, 30, 0.8)
    text = "The VPN uses port 1194.[1] It was installed in 2019."
    claims = (Claim(0, 26, "The VPN uses port 1194.[1]", True, (1,), 0.9),
              Claim(27, len(text), "It was installed in 2019.", False, reason="2019 is in no source"))
    print_sources(Answer("q", text, (src,), (Citation(1, src, inferred=True),), 10, claims=claims))
    out = capsys.readouterr().out
    assert "checked: 1 of 2 sentences supported" in out
    assert "⚠ not supported by the sources: It was installed in 2019." in out and "[1] vpn.md" in out
    print_sources(Answer("q", "not answered", (src,), (), 10, found=False))
    assert "related, but not an answer:" in capsys.readouterr().out


def test_removing_several_documents_asks_first(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", str(folder), "--kb", "r", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["remove", "/", "--kb", "r"]) == 1  # not a terminal, no --yes: nothing removed
    err = capsys.readouterr().err
    assert "matches 2 documents" in err and "pass --yes" in err
    assert main(["list", "--kb", "r", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert main(["remove", "/", "--kb", "r", "--yes", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["removed"] == 2


@pytest.mark.parametrize("argv", [["search", "x", "--top-k", "-1"], ["ask", "x", "--top-k", "0"],
                                  ["search", "x", "--kb", ""], ["list", "--kb", " "]])
def test_argument_ranges_are_checked_by_the_parser(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and "error:" in capsys.readouterr().err
