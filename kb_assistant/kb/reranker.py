"""Optional cross-encoder reranking from a local directory; scores mapped to 0..1 relevance."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from ..errors import ModelUnavailableError


class CrossEncoderReranker:
    """A sentence-transformers ``CrossEncoder`` loaded from disk (never downloaded)."""

    def __init__(self, path: str | Path) -> None:
        from ..embedders import local_model_dir

        path = local_model_dir(path, ("config.json",),
                               "no cross-encoder in {path}: give a local directory holding config.json (e.g. a "
                               "bge-reranker or ms-marco MiniLM cross-encoder); models are never downloaded")
        try:
            from sentence_transformers import CrossEncoder
        except ImportError as exc:  # pragma: no cover
            raise ModelUnavailableError("pip install sentence-transformers to use a reranker") from exc
        self._model = CrossEncoder(str(path), device="cpu", local_files_only=True)
        self.id = f"cross-encoder/{path.name}"

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        """Relevance of each text to ``query`` on 0..1 (sigmoid of the model's logit)."""
        if not texts:
            return []
        raw = self._model.predict([(query, t) for t in texts], convert_to_numpy=True, show_progress_bar=False)
        flat = [float(x) if not hasattr(x, "__len__") else float(x[-1]) for x in raw]
        if all(0.0 <= x <= 1.0 for x in flat):  # already probabilities (models with a sigmoid head)
            return flat
        return [1.0 / (1.0 + math.exp(-x)) for x in flat]


@lru_cache(maxsize=2)
def load_reranker(path: str) -> CrossEncoderReranker:
    return CrossEncoderReranker(path)
