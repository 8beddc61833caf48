"""The one exception family for user-facing errors: each message says what to do."""

from __future__ import annotations


class KBError(Exception):
    """An error meant for the user; the CLI prints it as one line and exits 1."""


class EmbedderMismatchError(KBError):
    """The knowledge base was built with another embedder."""


class ModelUnavailableError(KBError):
    """A model or backend cannot be loaded here."""


class EmptyKnowledgeBaseError(KBError):
    """Asked a question of a knowledge base that holds nothing."""
