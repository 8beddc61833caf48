"""Answer backends behind one seam, chosen by name from the settings."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .base import ChatMessage, Generator

__all__ = ["ChatMessage", "Generator", "make_generator"]


@lru_cache(maxsize=2)
def make_generator(
    backend: str, model_path: Path | None, *, models_dir: Path, n_ctx: int = 4096, n_threads: int | None = None
) -> Generator:
    """Load (once per process and arguments) the generator the settings name."""
    from ..errors import KBError

    if backend == "llama-cpp":
        from .llama import LlamaCppGenerator

        if model_path is None:
            from ..bundled import bundled_model_path

            model_path = bundled_model_path(models_dir)
        return LlamaCppGenerator(model_path, n_ctx=n_ctx, n_threads=n_threads)
    if backend == "echo":
        from .echo import EchoGenerator

        return EchoGenerator(context_window=n_ctx)
    raise KBError(f"unknown generator backend {backend!r}: use 'llama-cpp' (or 'echo' for tests)")
