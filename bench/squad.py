"""SQuAD-format data for benchmarks: paragraphs written out as files, questions with gold answers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Question:
    text: str
    answers: tuple[str, ...]
    doc: str  # file name of the paragraph it was asked about


def load_squad(path: str | Path, limit_paragraphs: int | None = None) -> tuple[list[str], list[Question]]:
    """Paragraph texts and their questions (paragraph i is written as ``p{i:05d}.txt``)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    paragraphs: list[str] = []
    questions: list[Question] = []
    for article in data["data"]:
        for para in article["paragraphs"]:
            if limit_paragraphs is not None and len(paragraphs) >= limit_paragraphs:
                return paragraphs, questions
            name = f"p{len(paragraphs):05d}.txt"
            paragraphs.append(para["context"])
            for qa in para["qas"]:
                answers = tuple(dict.fromkeys(a["text"] for a in qa["answers"] if a["text"].strip()))
                if answers:
                    questions.append(Question(qa["question"], answers, name))
    return paragraphs, questions


def write_paragraphs(paragraphs: list[str], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(paragraphs):
        (folder / f"p{i:05d}.txt").write_text(text, encoding="utf-8")
    return folder


def answer_hit_rank(texts: list[str], answers: tuple[str, ...]) -> int | None:
    """1-based rank of the first retrieved text containing a gold answer, else None."""
    for rank, text in enumerate(texts, 1):
        if any(a in text for a in answers):
            return rank
    return None
