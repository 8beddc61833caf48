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


def test_flat_env_and_toml_keys_still_fill_the_model_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from kb_assistant.settings import ModelSettings, load_settings

    config = tmp_path / "config.toml"
    config.write_text('model_path = "/models/a.gguf"\nn_ctx = 8192\nquantize = "int8"\ntop_k = 7\n', encoding="utf-8")
    monkeypatch.setenv("KB_CONFIG", str(config))
    s = load_settings()
    assert s.model == ModelSettings(generator="echo", model_path=Path("/models/a.gguf"), n_ctx=8192, quantize="int8")
    assert s.top_k == 7
    # precedence: explicit > environment > file, field by field
    monkeypatch.setenv("KB_N_CTX", "2048")
    monkeypatch.setenv("KB_MERGE_ADAPTER", "true")
    s = load_settings(quantize="bf16")
    assert (s.model.n_ctx, s.model.quantize, s.model.merge_adapter, s.model.model_path) == \
        (2048, "bf16", True, Path("/models/a.gguf"))
    # a [model] table works too
    config.write_text('[model]\ngenerator = "openai"\nbase_url = "http://h:8000/v1"\n', encoding="utf-8")
    monkeypatch.delenv("KB_GENERATOR")
    assert load_settings().model.base_url == "http://h:8000/v1" and load_settings().model.generator == "openai"


@pytest.mark.parametrize(("var", "value"), [("KB_N_CTX", "100"), ("KB_CONTEXT_WINDOW", "8"), ("KB_QUANTIZE", "int3"),
                                            ("KB_GENERATOR", "gpt"), ("KB_MAX_NEW_TOKENS", "8"), ("KB_N_THREADS", "0")])
def test_bad_model_values_are_refused(var: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from kb_assistant.errors import SettingsError
    from kb_assistant.settings import load_settings

    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError, match=f"{var.removeprefix('KB_').lower()} \\({var}\\) = '{value}'"):
        load_settings()


def test_one_registry_entry_per_backend_reading_declared_fields() -> None:
    from kb_assistant.generators import BACKENDS, offered_backends
    from kb_assistant.settings import ModelSettings

    assert list(BACKENDS) == list(ModelSettings.choices("generator"))
    used = {f for b in BACKENDS.values() for f in b.uses}
    assert used <= set(ModelSettings.model_fields)
    assert used | {"generator"} == set(ModelSettings.model_fields)  # no field that nothing reads
    assert "echo" not in offered_backends() and offered_backends("echo")[0] == "echo"


def test_make_generator_caches_per_model_configuration(tmp_path: Path) -> None:
    from kb_assistant.generators import make_generator
    from kb_assistant.settings import ModelSettings

    a = ModelSettings(generator="echo", n_ctx=1024)
    gen = make_generator(a, models_dir=tmp_path)
    assert make_generator(ModelSettings(generator="echo", n_ctx=1024), models_dir=tmp_path) is gen
    assert make_generator(a.updated(n_ctx=2048), models_dir=tmp_path).context_window == 2048
    assert ModelSettings.model_validate_json(a.cache_key()) == a and a.cache_key() != a.updated(n_ctx=2048).cache_key()
    with pytest.raises(Exception, match="n_ctx"):
        a.updated(n_ctx=1)


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


def test_doctor_names_what_a_backend_misses(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import dataclasses

    from kb_assistant import generators

    ghost = dataclasses.replace(generators.BACKENDS["openai"], requires=("httpx", "no_such_module_kb"))
    monkeypatch.setitem(generators.BACKENDS, "openai", ghost)
    assert main(["doctor"]) == 0
    assert "openai        missing no_such_module_kb" in capsys.readouterr().out
    assert main(["doctor", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["backends"]["openai"] is False
