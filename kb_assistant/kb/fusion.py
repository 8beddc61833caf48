"""Reciprocal rank fusion of ranked id lists."""

from __future__ import annotations

from collections.abc import Sequence


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], *, k: float = 60, weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """Fuse ranked id lists: each id scores ``sum(weight / (k + rank))`` over the lists holding it (rank from 1).

    Best first; ties go to the id with the better best rank, then the lower id, so the order is
    deterministic. A repeated id within one list counts at its first rank only.
    """
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} rankings")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    scores: dict[int, float] = {}
    best: dict[int, int] = {}
    for ranking, weight in zip(rankings, weights):
        seen: set[int] = set()
        for rank, rid in enumerate(ranking, 1):
            if rid in seen:
                continue
            seen.add(rid)
            scores[rid] = scores.get(rid, 0.0) + weight / (k + rank)
            best[rid] = min(best.get(rid, rank), rank)
    return sorted(scores.items(), key=lambda item: (-item[1], best[item[0]], item[0]))
