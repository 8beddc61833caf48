"""Context windows of the models people run, for when a model does not say its own."""

from __future__ import annotations

import re

# Trained context windows (tokens). Matched against a model's name or path, most specific first.
MODEL_WINDOWS: tuple[tuple[str, int], ...] = (
    (r"glm-?4.*(9b|chat)", 131072),
    (r"chatglm3", 8192),
    (r"chatglm2", 32768),
    (r"chatglm-?6b", 2048),
    (r"qwen2\.5", 32768),
)


def profile_window(name: str) -> int | None:
    """The known window for a model name such as ``chatglm2-6b-int4``, else None."""
    lowered = name.lower()
    for pattern, window in MODEL_WINDOWS:
        if re.search(pattern, lowered):
            return window
    return None


def effective_window(model_window: int, override: int | None) -> int:
    """The user's override, never above what the loaded model can hold."""
    return min(override, model_window) if override else model_window
