"""Dataclasses that cross the vector-store seam."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Record:
    """One vector with its payload. ``id`` is a caller-chosen non-negative 63-bit integer."""

    id: int
    vector: np.ndarray
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """A search result: the record id, its inner-product score (higher = closer) and payload."""

    id: int
    score: float
    payload: dict[str, Any]
