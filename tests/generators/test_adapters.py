"""PEFT adapters on the transformers backend: LoRA attached and merged agree; prefix tuning changes outputs."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from kb_assistant.errors import ModelUnavailableError
from kb_assistant.generators.base import ChatMessage
from kb_assistant.generators.transformers_backend import TransformersGenerator

MESSAGES = [ChatMessage("user", "报销需要在多少天内提交？ Within how many days?")]


def _save_adapter(tiny_glm: Path, target: Path, config: object) -> Path:
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(tiny_glm, local_files_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model = get_peft_model(base, config)  # type: ignore[arg-type]
        with torch.no_grad():  # make the adapter matter: random prefix / non-zero LoRA B
            for p in model.parameters():
                if p.requires_grad:
                    p.add_(torch.randn_like(p) * 0.5)
        model.save_pretrained(target)
    return target


@pytest.fixture(scope="module")
def lora_dir(tiny_glm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from peft import LoraConfig, TaskType

    config = LoraConfig(task_type=TaskType.CAUSAL_LM, r=8, lora_alpha=32, lora_dropout=0.1,
                        target_modules=["q_proj", "v_proj", "gate_up_proj", "down_proj"])
    return _save_adapter(tiny_glm, tmp_path_factory.mktemp("lora"), config)


@pytest.fixture(scope="module")
def prefix_dir(tiny_glm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from peft import PrefixTuningConfig, TaskType

    config = PrefixTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=8, prefix_projection=True,
                                encoder_hidden_size=64)
    return _save_adapter(tiny_glm, tmp_path_factory.mktemp("prefix"), config)


def logits(gen: TransformersGenerator) -> torch.Tensor:
    ids = torch.tensor([gen.encode(gen.render(MESSAGES))])
    with torch.no_grad():
        return gen._model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits


def test_lora_merged_matches_unmerged(tiny_glm: Path, lora_dir: Path) -> None:
    base = TransformersGenerator(tiny_glm)
    attached = TransformersGenerator(tiny_glm, adapter=lora_dir)
    merged = TransformersGenerator(tiny_glm, adapter=lora_dir, merge_adapter=True)
    assert not any("lora" in n for n, _ in merged._model.named_parameters())
    assert not torch.allclose(logits(base), logits(attached), atol=1e-4)
    assert torch.allclose(logits(attached), logits(merged), atol=1e-4)
    assert attached.name == "tiny-glm+" + lora_dir.name
    assert attached.generate(MESSAGES, max_tokens=12, temperature=0) == \
        merged.generate(MESSAGES, max_tokens=12, temperature=0)


def test_prefix_tuning_changes_outputs_and_streams(tiny_glm: Path, prefix_dir: Path) -> None:
    base = TransformersGenerator(tiny_glm)
    prefixed = TransformersGenerator(tiny_glm, adapter=prefix_dir)
    assert not torch.allclose(logits(base), logits(prefixed), atol=1e-3)
    pieces = list(prefixed.stream(MESSAGES, max_tokens=12, temperature=0))
    assert "".join(pieces) == prefixed.generate(MESSAGES, max_tokens=12, temperature=0)


def test_prefix_tuning_cannot_be_merged(tiny_glm: Path, prefix_dir: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="only LoRA"):
        TransformersGenerator(tiny_glm, adapter=prefix_dir, merge_adapter=True)


def test_not_an_adapter_is_a_clear_error(tiny_glm: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="not an adapter directory"):
        TransformersGenerator(tiny_glm, adapter=tmp_path)
    with pytest.raises(ModelUnavailableError, match="no adapter directory"):
        TransformersGenerator(tiny_glm, adapter=tmp_path / "missing")


@pytest.mark.parametrize("merge", [True, False])
def test_lora_then_int8_keeps_the_adapters_effect(tiny_glm: Path, lora_dir: Path, merge: bool) -> None:
    """int8 quantization must apply to the adapted weights: its logits stay near the fp32 LoRA model's and
    far from the base model's (a silently dropped adapter would land on the base)."""
    base = logits(TransformersGenerator(tiny_glm, device="cpu"))
    lora_fp32 = TransformersGenerator(tiny_glm, adapter=lora_dir, merge_adapter=True, device="cpu")
    lora_int8 = TransformersGenerator(tiny_glm, adapter=lora_dir, merge_adapter=merge, quantize="int8", device="cpu")
    assert any("quantized.dynamic" in type(m).__module__ for m in lora_int8._model.modules())
    adapted, quantized = logits(lora_fp32), logits(lora_int8)
    shift = (adapted - base).abs().mean()  # what the adapter changes
    noise = (quantized - adapted).abs().mean()  # what int8 changes
    assert noise < 0.25 * shift, (float(noise), float(shift))
    assert (quantized - base).abs().mean() > 0.5 * shift
    top = quantized.argmax(-1)  # the next token the int8 model would pick at each prompt position
    agree_lora = (top == adapted.argmax(-1)).float().mean()
    agree_base = (top == base.argmax(-1)).float().mean()
    assert agree_lora >= 0.6 and agree_base <= 0.2  # measured: 0.81 and 0.0 (random tiny weights: near ties)
