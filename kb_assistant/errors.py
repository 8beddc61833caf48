"""The one exception family for user-facing errors: each message says what to do."""

from __future__ import annotations

import errno


class KBError(Exception):
    """An error meant for the user; the CLI prints it as one line and exits 1."""


class EmbedderMismatchError(KBError):
    """The knowledge base was built with another embedder."""


class ModelUnavailableError(KBError):
    """A model or backend cannot be loaded here."""


class EmptyKnowledgeBaseError(KBError):
    """Asked a question of a knowledge base that holds nothing."""


class SettingsError(KBError):
    """A setting (environment variable, config file or flag) has a value that cannot be used."""


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # disk full, quota, a file over its size cap


def user_message(exc: BaseException) -> str | None:
    """One line for an expected failure at a door (CLI, web app, API server), or None for a bug.

    Expected: our own errors, a store or file that cannot be opened or read, a document that cannot
    be parsed. Everything else is a bug and keeps its traceback.
    """
    from ingest import IngestError
    from vectorstore import VectorStoreError

    if isinstance(exc, KBError):
        return str(exc)
    if isinstance(exc, VectorStoreError):
        return f"vector store: {exc}"
    if isinstance(exc, IngestError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
        where = f" writing {exc.filename}" if exc.filename else ""
        return f"no space left on the disk{where} ({exc.strerror or exc}): free disk space and run it again"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror or exc}: {exc.filename}"
    return None
