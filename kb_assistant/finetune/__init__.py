"""Fine-tuning adapters (LoRA, P-Tuning v2, freeze) that the transformers backend loads with ``adapter=``."""

from __future__ import annotations

from .data import Example, load_examples, qa_files_for, split_heldout
from .train import FinetuneOptions, FinetuneResult, finetune

__all__ = ["Example", "FinetuneOptions", "FinetuneResult", "finetune", "load_examples", "qa_files_for",
           "split_heldout"]
