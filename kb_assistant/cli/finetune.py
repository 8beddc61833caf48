"""``kb finetune``: train a LoRA / P-Tuning v2 / freeze adapter that ``kb ask --adapter`` loads."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import KBError
from .common import print_json, settings_from


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "finetune",
        help="train an adapter (LoRA, P-Tuning v2, freeze) on a local transformers checkpoint",
        description="Train an adapter from JSON/JSONL records (instruction/input/output, context/target, "
        "prompt/response or question/answer). Prompt tokens are masked out of the loss; the loss on a "
        "held-out slice is printed before and after. --from-kb NAME collects the *.qa.jsonl files lying "
        "in the folders of that knowledge base's documents.",
    )
    p.add_argument("data", nargs="*", type=Path, help="JSON / JSONL training files")
    p.add_argument("--from-kb", metavar="NAME", help="also use the *.qa.jsonl files next to this kb's documents")
    p.add_argument("--model", type=Path, help="base checkpoint directory (default: KB_MODEL_PATH)")
    p.add_argument("--method", choices=("lora", "ptuning", "freeze"), default="lora")
    p.add_argument("--out", type=Path, help="adapter directory (default: DATA_DIR/adapters/NAME-METHOD)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, help="learning rate (default: lora 2e-4, ptuning 2e-2, freeze 1e-4)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-length", type=int, default=512, help="tokens per example (prompt + answer)")
    p.add_argument("--heldout", type=float, default=0.1, help="fraction held out for the before/after loss")
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--lora-alpha", type=int, default=32)
    p.add_argument("--lora-dropout", type=float, default=0.1)
    p.add_argument("--lora-targets", help="comma-separated module names (default: PEFT's for the model, "
                   "else every linear layer)")
    p.add_argument("--prefix-tokens", type=int, default=16, help="ptuning: prefix length (pre_seq_len)")
    p.add_argument("--freeze-layers", type=int, default=2, help="freeze: train the MLPs of the last N blocks")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run_finetune)


def run_finetune(args: argparse.Namespace) -> int:
    from ..finetune import FinetuneOptions, finetune, load_examples, qa_files_for

    settings = settings_from(args)
    model = args.model or settings.model.model_path
    if model is None or not Path(model).expanduser().is_dir():
        raise KBError("kb finetune needs a local transformers checkpoint directory: --model DIR (or KB_MODEL_PATH)")
    files = list(args.data)
    if args.from_kb:
        from ..app import open_kb

        with open_kb(settings, args.from_kb, create=False) as kb:
            qa = qa_files_for([d.source for d in kb.documents()])
        if not qa:
            raise KBError(f"no *.qa.jsonl files next to the documents of knowledge base {args.from_kb!r}: put "
                          'lines like {"question": "...", "answer": "..."} in a file such as faq.qa.jsonl '
                          "in an indexed folder")
        print(f"using {len(qa)} question/answer file(s): " + ", ".join(str(q) for q in qa), file=sys.stderr)
        files += qa
    if not files:
        raise KBError("give training files (JSON/JSONL) or --from-kb NAME")
    examples = load_examples(files)
    name = args.from_kb or (files[0].name.split(".")[0] if files else "adapter")
    out = args.out or settings.data_dir / "adapters" / f"{name}-{args.method}"
    opts = FinetuneOptions(
        method=args.method, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, max_length=args.max_length,
        heldout_fraction=args.heldout, lora_r=args.lora_r, lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        lora_targets=tuple(t.strip() for t in args.lora_targets.split(",")) if args.lora_targets else None,
        prefix_tokens=args.prefix_tokens, freeze_layers=args.freeze_layers, device=args.device,
    )
    result = finetune(model, examples, out, opts, progress=not args.json)
    if args.json:
        print_json(result.record())
        return 0
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    print(f"{result.method}: {result.train_examples} examples, {result.steps} steps, "
          f"{result.trainable_parameters:,} trainable parameters, {result.seconds:.1f} s")
    print(f"held-out loss ({result.heldout_examples} examples): {fmt(result.heldout_loss_before)} -> "
          f"{fmt(result.heldout_loss_after)}")
    print(f"adapter saved to {out}")
    print(f"use it: KB_GENERATOR=transformers KB_MODEL_PATH={model} kb ask \"...\" --adapter {out}")
    return 0
