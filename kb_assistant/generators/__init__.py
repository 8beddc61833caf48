"""Answer backends behind one seam, chosen by name from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .base import ChatMessage, Generator

__all__ = ["BACKENDS", "Backend", "ChatMessage", "Generator", "make_generator"]


@dataclass(frozen=True)
class Backend:
    """A registry entry: the backend's name, the packages it imports, and what it loads."""

    name: str
    requires: tuple[str, ...]
    loads: str


BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend("llama-cpp", ("llama_cpp",), "a local .gguf file (default: the bundled Qwen2.5-0.5B GGUF)"),
        Backend("transformers", ("torch", "transformers"), "a local checkpoint directory (GLM-4, ChatGLM-6B/2/3)"),
        Backend("openai", ("httpx",), "an OpenAI-compatible server at base_url (vLLM, Xinference, Ollama, FastChat)"),
        Backend("echo", (), "nothing: a deterministic stand-in for tests"),
    )
}


@lru_cache(maxsize=2)
def make_generator(
    backend: str,
    model_path: Path | None,
    *,
    models_dir: Path,
    n_ctx: int = 4096,
    n_threads: int | None = None,
    context_window: int | None = None,
    quantize: str = "none",
    adapter: Path | None = None,
    merge_adapter: bool = False,
    lora_path: Path | None = None,
    device: str = "auto",
    base_url: str | None = None,
    api_model: str | None = None,
    api_key: str | None = None,
    tokenizer_path: Path | None = None,
) -> Generator:
    """Load (once per process and arguments) the generator the settings name."""
    from ..errors import KBError, ModelUnavailableError

    if backend == "llama-cpp":
        from .llama import LlamaCppGenerator

        if model_path is None:
            from ..bundled import bundled_model_path

            model_path = bundled_model_path(models_dir)
        if adapter is not None:
            raise ModelUnavailableError(
                "the llama-cpp backend takes a GGUF LoRA file as lora_path (KB_LORA_PATH), not a PEFT adapter "
                "directory: convert it with llama.cpp's convert_lora_to_gguf.py, or use generator 'transformers'"
            )
        return LlamaCppGenerator(model_path, n_ctx=n_ctx, n_threads=n_threads, lora_path=lora_path)
    if backend == "transformers":
        from .transformers_backend import TransformersGenerator

        if model_path is None:
            raise ModelUnavailableError(
                "the transformers backend needs model_path (KB_MODEL_PATH): a local checkpoint directory"
            )
        return TransformersGenerator(
            model_path, quantize=quantize, adapter=adapter, merge_adapter=merge_adapter,
            context_window=context_window, device=device,
        )
    if backend == "openai":
        from .openai_compat import OpenAICompatGenerator

        if not base_url:
            raise ModelUnavailableError(
                "the openai backend needs base_url (KB_BASE_URL), e.g. http://127.0.0.1:8000/v1"
            )
        return OpenAICompatGenerator(
            base_url, model=api_model, api_key=api_key, context_window=context_window,
            tokenizer_path=tokenizer_path,
        )
    if backend == "echo":
        from .echo import EchoGenerator

        return EchoGenerator(context_window=n_ctx)
    raise KBError(f"unknown generator backend {backend!r}: use one of {', '.join(BACKENDS)}")
