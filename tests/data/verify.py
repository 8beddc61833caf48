"""Checks the SQuAD-format sets here: every answer_start is the exact offset of its text in its context
(the qa's own paragraph, or the one named by ``context_id``); ``-1`` marks an extra rendering (e.g. the
English form of a Chinese span) that is not a span. Run: ``python tests/data/verify.py``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def problems(path: Path) -> list[str]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    contexts = {str(p["id"]): p["context"] for a in data for p in a["paragraphs"] if "id" in p}
    found, ids = [], set()
    for article in data:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                if qa["id"] in ids:
                    found.append(f"{path.name}: duplicate qa id {qa['id']}")
                ids.add(qa["id"])
                spans = [a for a in qa["answers"] if a["answer_start"] >= 0]
                if qa["answers"] and not spans:
                    found.append(f"{path.name}: {qa['id']} has no answer span in the text")
                for a in spans:
                    context = contexts.get(str(a.get("context_id")), para["context"])
                    got = context[a["answer_start"]: a["answer_start"] + len(a["text"])]
                    if got != a["text"]:
                        found.append(f"{path.name}: {qa['id']} offset {a['answer_start']} holds {got!r}, "
                                     f"not {a['text']!r}")
    return found


if __name__ == "__main__":
    bad = [p for f in sorted(HERE.glob("*.json")) for p in problems(f)]
    print("\n".join(bad) or "all offsets check out")
    sys.exit(1 if bad else 0)
