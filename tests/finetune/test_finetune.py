"""kb finetune on the tiny GLM: the loss goes down for each method and the saved adapter reloads exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from kb_assistant.cli import main
from kb_assistant.errors import KBError
from kb_assistant.finetune import FinetuneOptions, finetune, load_examples, qa_files_for, split_heldout
from kb_assistant.finetune.data import Example, example_from
from kb_assistant.finetune.train import encode_example
from kb_assistant.generators.base import ChatMessage
from kb_assistant.generators.transformers_backend import TransformersGenerator
from tests.generators.tiny_glm import qa_pairs

LR = {"lora": 5e-3, "ptuning": 5e-2, "freeze": 5e-3}


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    return [example_from(r) for r in qa_pairs()] * 2  # 40 examples


def probe_logits(model: torch.nn.Module, gen: TransformersGenerator) -> torch.Tensor:
    ids = torch.tensor([gen.encode(gen.render([ChatMessage("user", "请假超过三天需要谁批准？")]))])
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits


@pytest.mark.parametrize("method", ["lora", "ptuning", "freeze"])
def test_loss_goes_down_and_adapter_reloads_exactly(
    method: str, tiny_glm: Path, examples: list[Example], tmp_path: Path
) -> None:
    opts = FinetuneOptions(method=method, lr=LR[method], epochs=3, heldout_fraction=0.2,  # type: ignore[arg-type]
                           freeze_layers=1)
    result = finetune(tiny_glm, examples, tmp_path / method, opts, progress=False)
    assert result.heldout_examples == 8 and result.train_examples == 32
    assert result.heldout_loss_after < result.heldout_loss_before
    first, last = sum(result.train_losses[:4]) / 4, sum(result.train_losses[-4:]) / 4
    assert last < first
    record = json.loads((tmp_path / method / "kb_finetune.json").read_text())
    assert record["method"] == method and record["steps"] == result.steps

    reloaded = TransformersGenerator(tiny_glm, adapter=tmp_path / method)
    assert torch.equal(probe_logits(result.model, reloaded), probe_logits(reloaded._model, reloaded))
    base = TransformersGenerator(tiny_glm)
    assert not torch.allclose(probe_logits(base._model, base), probe_logits(reloaded._model, reloaded))
    if method == "freeze":
        saved = json.loads((tmp_path / method / "kb_freeze_adapter.json").read_text())["parameters"]
        assert saved and all(".mlp." in n and n.startswith("model.layers.1.") for n in saved)


def test_prompt_tokens_are_masked(tiny_glm: Path) -> None:
    gen = TransformersGenerator(tiny_glm)
    ids, labels = encode_example(gen, Example("问题？ question", "答案 answer"), 512)
    prompt_len = len(gen.encode(gen.render([ChatMessage("user", "问题？ question")])))
    assert labels[:prompt_len] == [-100] * prompt_len
    assert labels[prompt_len:] == ids[prompt_len:] and labels[-1] == gen._eos[0]
    ids, labels = encode_example(gen, Example("长" * 400, "答" * 400), 64)
    assert len(ids) == len(labels) <= 64 and any(label != -100 for label in labels)


def test_data_formats(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(
        '{"instruction": "翻译", "input": "hello", "output": "你好"}\n\n'
        '{"context": "c", "target": "t"}\n{"question": "q", "answer": ""}\n', encoding="utf-8")
    (tmp_path / "b.json").write_text(json.dumps([{"prompt": "p", "response": "r"},
                                                 {"content": "x", "summary": "y"}]), encoding="utf-8")
    got = load_examples([tmp_path / "a.jsonl", tmp_path / "b.json"])
    assert got == [Example("翻译\n\nhello", "你好"), Example("c", "t"), Example("p", "r"), Example("x", "y")]
    (tmp_path / "bad.jsonl").write_text('{"foo": 1}\n')
    with pytest.raises(KBError, match="instruction/input/output"):
        load_examples([tmp_path / "bad.jsonl"])
    train, held = split_heldout([Example(str(i), "t") for i in range(20)], 0.1)
    assert len(held) == 2 and len(train) == 18


def test_cli_finetune_from_kb(tiny_glm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "policy.md").write_text("员工每年有十五天带薪年假。\n\nEmployees get fifteen days of leave.\n",
                                    encoding="utf-8")
    (docs / "faq.qa.jsonl").write_text("".join(
        json.dumps({"question": r["input"], "answer": r["output"]}, ensure_ascii=False) + "\n"
        for r in qa_pairs()), encoding="utf-8")
    assert main(["index", str(docs), "--kb", "hr"]) == 0
    assert qa_files_for([str(docs / "policy.md")]) == [docs / "faq.qa.jsonl"]
    out = tmp_path / "adapter"
    capsys.readouterr()
    code = main(["finetune", "--from-kb", "hr", "--model", str(tiny_glm), "--method", "lora", "--epochs", "1",
                 "--lr", "5e-3", "--out", str(out), "--json"])
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert record["train_examples"] + record["heldout_examples"] == 20
    assert (out / "adapter_config.json").is_file()


def test_cli_finetune_needs_data_and_model(tiny_glm: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["finetune", "--model", str(tiny_glm)]) == 1
    assert "training files" in capsys.readouterr().err
    assert main(["finetune", "x.jsonl"]) == 1
    assert "--model DIR" in capsys.readouterr().err
