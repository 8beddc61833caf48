"""The one exception family for ingestion problems a user can act on."""

from __future__ import annotations

import os


class IngestError(Exception):
    """A file could not be turned into documents; the message says which file and what to do.

    ``path`` is the file as given, ``reason`` what went wrong, ``hint`` what the user can do.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str, hint: str = "") -> None:
        self.path = str(path)
        self.reason = reason
        self.hint = hint
        super().__init__(self.path, reason, hint)

    def __str__(self) -> str:
        name = os.path.basename(self.path) or self.path
        message = f"cannot index {name}: {self.reason}"
        if self.hint:
            message += f" — {self.hint}"
        return " ".join(message.split())  # always one line, even if a parser's message had newlines


def missing_package(path: str | os.PathLike[str], module: str, package: str) -> IngestError:
    """The error for an optional parser that is not installed."""
    return IngestError(path, f"the {module!r} module is not installed", f"run: pip install {package}")
