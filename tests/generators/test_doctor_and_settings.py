"""kb doctor's report and sizing, and the model settings reaching the transformers backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kb_assistant.cli import main
from kb_assistant.cli.doctor import count_parameters, fit_table, parse_size
from kb_assistant.errors import KBError


def test_parse_size() -> None:
    assert parse_size("6B") == 6e9 and parse_size("0.5b") == 5e8 and parse_size("500M") == 5e8
    with pytest.raises(KBError, match="6B"):
        parse_size("six")


def test_fit_table_matches_the_quoted_chatglm_6b_figures() -> None:
    rows = {r["precision"]: r for r in fit_table(6.2e9, ram_gb=10.0, gpu_gb=None)}
    assert 12 <= rows["fp16/bf16"]["needs_gb"] <= 14 and 7 <= rows["int8"]["needs_gb"] <= 9
    assert 5 <= rows["int4"]["needs_gb"] <= 7
    assert not rows["fp16/bf16"]["fits_ram"] and rows["int4"]["fits_ram"] and rows["int4"]["fits_gpu"] is None


def test_count_parameters_reads_safetensors(tiny_glm: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_glm, dtype=torch.float32)
    assert count_parameters(tiny_glm) == sum(p.numel() for p in model.parameters())


def test_doctor_json(tiny_glm: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--model", str(tiny_glm), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["packages"]["torch"] and report["backends"]["echo"] is True
    assert report["model"]["parameters"] > 0 and len(report["model"]["fits"]) == 3
    assert main(["doctor", "--model-size", "6B"]) == 0
    assert "int4" in capsys.readouterr().out


def test_settings_select_the_transformers_backend(tiny_glm: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kb_assistant.app import load_generator
    from kb_assistant.generators.transformers_backend import TransformersGenerator
    from kb_assistant.settings import load_settings

    monkeypatch.setenv("KB_GENERATOR", "transformers")
    monkeypatch.setenv("KB_MODEL_PATH", str(tiny_glm))
    monkeypatch.setenv("KB_QUANTIZE", "int8")
    monkeypatch.setenv("KB_CONTEXT_WINDOW", "300")
    gen = load_generator(load_settings())
    assert isinstance(gen, TransformersGenerator) and gen.quantize == "int8" and gen.context_window == 300
    with pytest.raises(Exception, match="quantize"):
        load_settings(quantize="int3")


def test_kb_ask_with_the_transformers_backend(tiny_glm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("员工每年有十五天带薪年假。", encoding="utf-8")
    assert main(["index", str(docs), "--kb", "t"]) == 0
    monkeypatch.setenv("KB_GENERATOR", "transformers")
    monkeypatch.setenv("KB_MODEL_PATH", str(tiny_glm))
    monkeypatch.setenv("KB_MAX_NEW_TOKENS", "16")
    monkeypatch.setenv("KB_MIN_RELEVANCE", "0")
    capsys.readouterr()
    assert main(["ask", "年假有几天？", "--kb", "t", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["prompt_tokens"] > 0
    assert main(["ask", "年假有几天？", "--kb", "t", "--adapter", str(tmp_path / "nope")]) == 1
    assert "no adapter directory" in capsys.readouterr().err
