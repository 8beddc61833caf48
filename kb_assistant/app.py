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
    """The configured answer model, loaded once per process and model configuration."""
    return make_generator(settings.model, models_dir=settings.models_dir)


def make_assistant(settings: Settings, kb: KnowledgeBase) -> Assistant:
    return Assistant(kb, load_generator(settings), settings)
