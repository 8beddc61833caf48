"""Fine-tuned adapters on a transformers model: PEFT (LoRA, prefix tuning / P-Tuning v2) and freeze weights."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from ..errors import ModelUnavailableError

# `kb finetune --method freeze` writes the trained blocks' weights next to this descriptor.
FREEZE_CONFIG = "kb_freeze_adapter.json"
FREEZE_WEIGHTS = "freeze_model.safetensors"
PEFT_CONFIG = "adapter_config.json"


def adapter_kind(path: Path) -> str:
    """'peft' or 'freeze' for an adapter directory; a clear error for anything else."""
    if (path / PEFT_CONFIG).is_file():
        return "peft"
    if (path / FREEZE_CONFIG).is_file():
        return "freeze"
    raise ModelUnavailableError(
        f"{path} is not an adapter directory: expected {PEFT_CONFIG} (LoRA / prefix tuning, from PEFT or "
        f"`kb finetune`) or {FREEZE_CONFIG} (from `kb finetune --method freeze`)"
    )


def peft_type(path: Path) -> str:
    """The PEFT method recorded in an adapter directory, e.g. 'LORA' or 'PREFIX_TUNING'."""
    return str(json.loads((path / PEFT_CONFIG).read_text(encoding="utf-8")).get("peft_type", "")).upper()


def is_lora(path: Path) -> bool:
    """Whether ``path`` holds a PEFT LoRA adapter (the kind that can be merged into the weights)."""
    path = path.expanduser()
    return (path / PEFT_CONFIG).is_file() and peft_type(path) == "LORA"


def attach_adapter(model: Any, path: str | Path, *, merge: bool = False) -> Any:
    """Return ``model`` with the adapter in ``path`` applied (LoRA merged into the weights if ``merge``)."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise ModelUnavailableError(f"no adapter directory at {path}")
    if adapter_kind(path) == "freeze":
        load_freeze_weights(model, path)
        return model
    try:
        from peft import PeftModel
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelUnavailableError("LoRA / prefix adapters need PEFT: pip install peft==0.21.2") from exc
    kind = peft_type(path)
    if merge and kind != "LORA":
        raise ModelUnavailableError(
            f"a {kind.lower()} adapter cannot be merged into the weights (only LoRA can): unset merge_adapter"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # PEFT calls transformers' deprecated helpers
        try:
            wrapped = PeftModel.from_pretrained(model, str(path), is_trainable=False)
        except (ValueError, RuntimeError, KeyError) as exc:
            raise ModelUnavailableError(f"the adapter in {path} does not fit this model: {exc}") from exc
    wrapped.eval()
    return wrapped.merge_and_unload() if merge else wrapped


def load_freeze_weights(model: Any, path: Path) -> None:
    """Overwrite the parameters a freeze fine-tune trained with the saved ones (names must all exist)."""
    from safetensors.torch import load_file

    tensors = load_file(str(path / FREEZE_WEIGHTS))
    own = dict(model.named_parameters())
    missing = [name for name in tensors if name not in own]
    if missing:
        raise ModelUnavailableError(
            f"the freeze adapter in {path} names parameters this model lacks ({missing[0]} ...): "
            "it was trained on another base model"
        )
    import torch

    with torch.no_grad():
        for name, value in tensors.items():
            if own[name].shape != value.shape:
                raise ModelUnavailableError(f"freeze adapter {path}: {name} has shape {tuple(value.shape)}, "
                                            f"the model has {tuple(own[name].shape)}")
            own[name].copy_(value.to(own[name].dtype))
