"""Training examples: JSON/JSONL in the common instruction formats, and question/answer files beside documents."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import KBError

# Accepted field pairs, first match wins: Alpaca (instruction/input/output), ChatGLM's P-Tuning examples
# (context/target, content/summary, prompt/response) and plain question/answer.
_PAIRS = (("context", "target"), ("content", "summary"), ("prompt", "response"), ("question", "answer"))
QA_SUFFIXES = (".qa.jsonl", ".qa.json")


@dataclass(frozen=True)
class Example:
    """One supervised pair: the user's turn and the answer the model should learn."""

    prompt: str
    target: str


def example_from(record: dict[str, Any]) -> Example:
    """Normalise one record; a clear error names the fields that are accepted."""
    if "instruction" in record and "output" in record:
        extra = str(record.get("input") or "").strip()
        prompt = str(record["instruction"]).strip() + (f"\n\n{extra}" if extra else "")
        return Example(prompt, str(record["output"]))
    for p, t in _PAIRS:
        if p in record and t in record:
            return Example(str(record[p]), str(record[t]))
    raise KBError(
        f"a training record has fields {sorted(record)}: use instruction/input/output, context/target, "
        "prompt/response or question/answer"
    )


def read_records(path: Path) -> list[dict[str, Any]]:
    """Records of a .jsonl file (one object a line) or a .json file (a list of objects)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise KBError(f"cannot read training data {path}: {exc}") from exc
    stripped = text.lstrip()
    try:
        if stripped.startswith("["):
            data = json.loads(stripped)
        else:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise KBError(f"{path} is not valid JSON / JSON lines: {exc}") from exc
    if not all(isinstance(r, dict) for r in data):
        raise KBError(f"{path}: every record must be a JSON object")
    return data


def load_examples(paths: Iterable[Path]) -> list[Example]:
    """All examples of the given files, skipping records with an empty answer."""
    examples = []
    for path in paths:
        for record in read_records(Path(path)):
            ex = example_from(record)
            if ex.target.strip():
                examples.append(ex)
    return examples


def qa_files_for(sources: Sequence[str]) -> list[Path]:
    """The ``*.qa.jsonl`` / ``*.qa.json`` files in the folders of a knowledge base's documents."""
    folders = sorted({Path(s).parent for s in sources})
    found: list[Path] = []
    for folder in folders:
        if folder.is_dir():
            for suffix in QA_SUFFIXES:
                found += sorted(p for p in folder.glob(f"*{suffix}") if p.is_file())
    return list(dict.fromkeys(found))


def split_heldout(examples: Sequence[Example], fraction: float = 0.1) -> tuple[list[Example], list[Example]]:
    """Deterministic split: every k-th example is held out (at least one when there are two or more)."""
    if len(examples) < 2 or fraction <= 0:
        return list(examples), []
    k = max(2, round(1 / fraction))
    held_idx = {i for i in range(len(examples)) if i % k == k - 1} or {len(examples) - 1}
    train = [e for i, e in enumerate(examples) if i not in held_idx]
    return train, [examples[i] for i in sorted(held_idx)]
