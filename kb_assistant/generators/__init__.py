"""Answer backends behind one seam: a registry, one entry per backend, each built from ``ModelSettings``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import ModelUnavailableError
from ..settings import GeneratorName, ModelSettings, default_data_dir
from .base import ChatMessage, Generator

__all__ = ["BACKENDS", "Backend", "ChatMessage", "Generator", "make_generator", "offered_backends"]


@dataclass(frozen=True)
class Backend:
    """A registry entry: what the backend imports, what it loads, which model settings it reads, how to build it."""

    name: GeneratorName
    requires: tuple[str, ...]  # importable modules (`kb doctor` reports the missing ones)
    loads: str
    uses: tuple[str, ...]  # ModelSettings fields it reads (the web app shows inputs for these)
    build: Callable[[ModelSettings, Path], Generator]
    offered: bool = True  # listed in the web app's backend choice

    def missing(self) -> list[str]:
        """Required modules that cannot be imported here."""
        out = []
        for module in self.requires:
            try:
                importlib.import_module(module)
            except Exception:  # ImportError, or a broken native library
                out.append(module)
        return out


def _llama(m: ModelSettings, models_dir: Path) -> Generator:
    from .llama import LlamaCppGenerator

    if m.adapter is not None:
        raise ModelUnavailableError(
            "the llama-cpp backend takes a GGUF LoRA file as lora_path (KB_LORA_PATH), not a PEFT adapter "
            "directory: convert it with llama.cpp's convert_lora_to_gguf.py, or use generator 'transformers'"
        )
    path = m.model_path
    if path is None:
        from ..bundled import bundled_model_path

        path = bundled_model_path(models_dir)
    return LlamaCppGenerator(path, n_ctx=m.n_ctx, n_threads=m.n_threads, lora_path=m.lora_path)


def _transformers(m: ModelSettings, models_dir: Path) -> Generator:
    from .transformers_backend import TransformersGenerator

    if m.model_path is None:
        raise ModelUnavailableError(
            "the transformers backend needs model_path (KB_MODEL_PATH): a local checkpoint directory"
        )
    return TransformersGenerator(m.model_path, quantize=m.quantize, adapter=m.adapter, merge_adapter=m.merge_adapter,
                                 context_window=m.context_window, device=m.device)


def _openai(m: ModelSettings, models_dir: Path) -> Generator:
    from .openai_compat import OpenAICompatGenerator

    if not m.base_url:
        raise ModelUnavailableError("the openai backend needs base_url (KB_BASE_URL), e.g. http://127.0.0.1:8000/v1")
    return OpenAICompatGenerator(m.base_url, model=m.api_model, api_key=m.api_key, context_window=m.context_window,
                                 tokenizer_path=m.tokenizer_path)


def _echo(m: ModelSettings, models_dir: Path) -> Generator:
    from .echo import EchoGenerator

    return EchoGenerator(context_window=m.n_ctx)


BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend("llama-cpp", ("llama_cpp",), "a local .gguf file (default: the bundled Qwen2.5-0.5B GGUF)",
                ("model_path", "n_ctx", "n_threads", "lora_path"), _llama),
        Backend("transformers", ("torch", "transformers"), "a local checkpoint directory (GLM-4, ChatGLM-6B/2/3)",
                ("model_path", "quantize", "device", "adapter", "merge_adapter", "context_window"), _transformers),
        Backend("openai", ("httpx",), "an OpenAI-compatible server at base_url (vLLM, Xinference, Ollama, FastChat)",
                ("base_url", "api_model", "api_key", "tokenizer_path", "context_window"), _openai),
        Backend("echo", (), "nothing: a deterministic stand-in for tests", ("n_ctx",), _echo, offered=False),
    )
}


def offered_backends(current: str | None = None) -> list[str]:
    """Backend names for a choice list: those offered to users, plus ``current`` if it is another one."""
    names = [name for name, b in BACKENDS.items() if b.offered]
    return names if current is None or current in names else [current, *names]


@lru_cache(maxsize=2)
def make_generator(model: ModelSettings, *, models_dir: Path | None = None) -> Generator:
    """Load the generator ``model`` describes, once per process and configuration (``model`` is the key).

    ``models_dir`` is where the bundled GGUF is assembled (default: the data directory's ``models``).
    """
    return BACKENDS[model.generator].build(model, models_dir or default_data_dir() / "models")
