"""Adapter training on a local transformers checkpoint: LoRA, P-Tuning v2 (prefix tuning) or freeze."""

from __future__ import annotations

import json
import math
import random
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from ..errors import KBError
from ..generators.adapters import FREEZE_CONFIG, FREEZE_WEIGHTS
from ..generators.base import ChatMessage
from .data import Example, split_heldout

Method = Literal["lora", "ptuning", "freeze"]
DEFAULT_LR = {"lora": 2e-4, "ptuning": 2e-2, "freeze": 1e-4}
RECORD = "kb_finetune.json"


@dataclass(frozen=True)
class FinetuneOptions:
    """Training knobs; defaults follow the usual ChatGLM recipes (LoRA r=8, alpha=32, dropout 0.1)."""

    method: Method = "lora"
    epochs: int = 3
    lr: float | None = None  # None = DEFAULT_LR[method]
    batch_size: int = 4
    max_length: int = 512
    heldout_fraction: float = 0.1
    lora_r: int = 8
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    lora_targets: tuple[str, ...] | None = None  # None = PEFT's known targets for the model, else all linear
    prefix_tokens: int = 16  # P-Tuning v2 pre_seq_len
    freeze_layers: int = 2  # freeze: train the MLPs of the last N blocks
    seed: int = 0
    device: str = "auto"


@dataclass
class FinetuneResult:
    """What a training run did; also written to ``kb_finetune.json`` in the adapter directory."""

    method: str
    base_model: str
    output_dir: str
    train_examples: int
    heldout_examples: int
    steps: int
    trainable_parameters: int
    heldout_loss_before: float | None
    heldout_loss_after: float | None
    train_losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    model: Any = field(default=None, repr=False, compare=False)  # the trained model (not saved in the record)

    def record(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "model"}


def encode_example(gen: Any, ex: Example, max_length: int) -> tuple[list[int], list[int]]:
    """Input ids and labels; prompt tokens (chat template included) are -100 so only the answer is learned."""
    prompt_ids = gen.encode(gen.render([ChatMessage("user", ex.prompt)]))
    eos = gen._eos[:1]
    target_ids = list(gen.tokenizer(ex.target, add_special_tokens=False)["input_ids"]) + eos
    target_ids = target_ids[: max(1, max_length // 2)] if len(prompt_ids) + len(target_ids) > max_length else target_ids
    prompt_ids = prompt_ids[-(max_length - len(target_ids)):]  # keep the end: template + question
    return prompt_ids + target_ids, [-100] * len(prompt_ids) + target_ids


def _batches(items: Sequence[tuple[list[int], list[int]]], size: int, pad_id: int, device: Any) -> list[dict]:
    import torch

    out = []
    for start in range(0, len(items), size):
        chunk = items[start:start + size]
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        labels = torch.full((len(chunk), width), -100, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, (i, lab) in enumerate(chunk):  # right padding
            ids[row, : len(i)] = torch.tensor(i)
            labels[row, : len(lab)] = torch.tensor(lab)
            mask[row, : len(i)] = 1
        out.append({"input_ids": ids.to(device), "labels": labels.to(device), "attention_mask": mask.to(device)})
    return out


def mean_loss(model: Any, batches: Sequence[dict]) -> float | None:
    """Token-weighted mean loss over the answer tokens of ``batches`` (None when there are none)."""
    import torch

    if not batches:
        return None
    total, tokens = 0.0, 0
    model.eval()
    with torch.no_grad():
        for b in batches:
            n = int((b["labels"][:, 1:] != -100).sum())
            total += float(model(**b).loss) * n
            tokens += n
    return total / max(tokens, 1)


def transformer_blocks(model: Any) -> list[Any]:
    """The model's repeated decoder blocks (GLM: model.layers; ChatGLM2/3: transformer.encoder.layers)."""
    import torch

    best: list[Any] = []
    for _, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) > len(best):
            best = list(module)
    if not best:
        raise KBError("cannot find the transformer blocks of this model for --method freeze: use lora")
    return best


def _prepare(model: Any, opts: FinetuneOptions, model_type: str) -> tuple[Any, list[str]]:
    """Wrap or unfreeze ``model`` for the method; returns it and (freeze) the trained parameter names."""
    if opts.method == "freeze":
        for p in model.parameters():
            p.requires_grad_(False)
        names = []
        blocks = transformer_blocks(model)
        wanted = {id(b) for b in blocks[-opts.freeze_layers:]}
        for name, module in model.named_modules():
            if id(module) in wanted:
                mlp = getattr(module, "mlp", None)
                if mlp is None:
                    raise KBError("the model's blocks have no .mlp for --method freeze: use lora")
                for pname, p in mlp.named_parameters():
                    p.requires_grad_(True)
                    names.append(f"{name}.mlp.{pname}")
        return model, names
    from peft import LoraConfig, PrefixTuningConfig, TaskType, get_peft_model
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as TARGETS

    if opts.method == "lora":
        targets: Any = list(opts.lora_targets) if opts.lora_targets else (TARGETS.get(model_type) or "all-linear")
        config: Any = LoraConfig(
            task_type=TaskType.CAUSAL_LM, r=opts.lora_r, lora_alpha=opts.lora_alpha,
            lora_dropout=opts.lora_dropout, target_modules=targets,
        )
    elif opts.method == "ptuning":
        # P-Tuning v2 = deep prompt tuning: trained key/value prefixes in every layer (no reparameterisation,
        # as in ChatGLM's ptuning scripts).
        config = PrefixTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=opts.prefix_tokens,
                                    prefix_projection=False)
    else:
        raise KBError(f"unknown fine-tuning method {opts.method!r}: use lora, ptuning or freeze")
    return get_peft_model(model, config), []


def finetune(
    model_path: str | Path,
    examples: Sequence[Example],
    output_dir: str | Path,
    opts: FinetuneOptions = FinetuneOptions(),  # noqa: B008 - frozen dataclass
    *,
    progress: bool = True,
) -> FinetuneResult:
    """Train an adapter on ``examples`` and save it to ``output_dir`` (loadable with ``adapter=``)."""
    import torch

    from ..generators.transformers_backend import TransformersGenerator

    if not examples:
        raise KBError("no training examples: give a JSON/JSONL file with instruction/output or context/target")
    started = time.perf_counter()
    random.seed(opts.seed)
    torch.manual_seed(opts.seed)
    output_dir = Path(output_dir).expanduser()
    gen = TransformersGenerator(model_path, device=opts.device)  # full precision: training needs it
    with gen.exclusive_model() as model:
        return _train(gen, model, model_path, examples, output_dir, opts, progress, started)


def _train(gen: Any, model: Any, model_path: str | Path, examples: Sequence[Example], output_dir: Path,
           opts: FinetuneOptions, progress: bool, started: float) -> FinetuneResult:
    import torch
    from tqdm.auto import tqdm

    model_type = str(getattr(gen.config, "model_type", ""))
    train_ex, held_ex = split_heldout(examples, opts.heldout_fraction)
    pad_id = gen.tokenizer.pad_token_id if gen.tokenizer.pad_token_id is not None else gen._eos[0]
    device = gen._input_device()
    encode = [encode_example(gen, e, opts.max_length) for e in train_ex]
    held = _batches([encode_example(gen, e, opts.max_length) for e in held_ex], opts.batch_size, pad_id, device)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # PEFT calls transformers' deprecated helpers
        model, freeze_names = _prepare(model, opts, model_type)
        before = mean_loss(model, held)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=opts.lr or DEFAULT_LR[opts.method], weight_decay=0.0)
        losses: list[float] = []
        steps = opts.epochs * math.ceil(len(encode) / opts.batch_size)
        bar = tqdm(total=steps, desc=f"finetune {opts.method}", unit="step", disable=not progress)
        for _epoch in range(opts.epochs):
            random.shuffle(encode)
            model.train()
            for batch in _batches(encode, opts.batch_size, pad_id, device):
                loss = model(**batch).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(float(loss.detach()))
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.4f}")
        bar.close()
        after = mean_loss(model, held)
        model.eval()
        output_dir.mkdir(parents=True, exist_ok=True)
        if opts.method == "freeze":
            save_freeze(model, freeze_names, output_dir, base=str(model_path), layers=opts.freeze_layers)
        else:
            model.save_pretrained(output_dir)
    result = FinetuneResult(
        method=opts.method, base_model=str(Path(model_path).expanduser()), output_dir=str(output_dir),
        train_examples=len(train_ex), heldout_examples=len(held_ex), steps=len(losses),
        trainable_parameters=sum(p.numel() for p in params), heldout_loss_before=before,
        heldout_loss_after=after, train_losses=losses, seconds=time.perf_counter() - started, model=model,
    )
    (output_dir / RECORD).write_text(json.dumps(result.record(), indent=2), encoding="utf-8")
    return result


def save_freeze(model: Any, names: Sequence[str], output_dir: Path, *, base: str, layers: int) -> None:
    """Write only the trained block weights (safetensors) and a descriptor the backend recognises."""
    from safetensors.torch import save_file

    own = dict(model.named_parameters())
    save_file({n: own[n].detach().contiguous().cpu() for n in names}, str(output_dir / FREEZE_WEIGHTS))
    (output_dir / FREEZE_CONFIG).write_text(
        json.dumps({"method": "freeze", "base_model": base, "layers": layers, "parameters": list(names)}, indent=2),
        encoding="utf-8",
    )
