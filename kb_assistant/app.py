"""Builds the runtime objects (embedder, knowledge base, generator, assistant) from the settings."""

from __future__ import annotations

from .assistant import Assistant
from .embedders import make_embedder
from .generators import Generator, make_generator
from .kb import KnowledgeBase
from .settings import Settings


def open_kb(settings: Settings, name: str | None = None, *, create: bool = True) -> KnowledgeBase:
    """Open knowledge base ``name`` (default: ``settings.default_kb``) with the configured embedder."""
    return KnowledgeBase.open(settings, name or settings.default_kb, make_embedder(settings.embedder), create=create)


def load_generator(settings: Settings) -> Generator:
    """The configured answer model, loaded once per process."""
    return make_generator(
        settings.generator,
        settings.model_path,
        models_dir=settings.models_dir,
        n_ctx=settings.n_ctx,
        n_threads=settings.n_threads,
        context_window=settings.context_window,
        quantize=settings.quantize,
        adapter=settings.adapter,
        merge_adapter=settings.merge_adapter,
        lora_path=settings.lora_path,
        device=settings.device,
        base_url=settings.base_url,
        api_model=settings.api_model,
        api_key=settings.api_key,
        tokenizer_path=settings.tokenizer_path,
    )


def make_assistant(settings: Settings, kb: KnowledgeBase) -> Assistant:
    return Assistant(kb, load_generator(settings), settings)
