"""pypdf's warnings (logged while it repairs a damaged file) carry the name of the file being read."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_reading: ContextVar[str] = ContextVar("ingest_pdf_reading", default="")
log = logging.getLogger("ingest.pdf")


class _Renamer(logging.Handler):
    """Passes pypdf's records on as ``ingest.pdf`` records prefixed with the file's name: pypdf logs
    "Ignoring wrong pointing object 6 0" and the user cannot tell which of a thousand files it meant."""

    def emit(self, record: logging.LogRecord) -> None:
        name = _reading.get()
        message = record.getMessage()
        log.log(record.levelno, "%s: %s", name, message) if name else log.log(record.levelno, "%s", message)


_installed = False


def _install() -> None:
    global _installed
    if not _installed:
        pypdf_log = logging.getLogger("pypdf")
        pypdf_log.addHandler(_Renamer())
        pypdf_log.propagate = False
        _installed = True


@contextmanager
def named_pdf_warnings(path: str | os.PathLike[str]) -> Iterator[None]:
    """While reading ``path`` with pypdf, its warnings name the file."""
    _install()
    token = _reading.set(os.path.basename(os.fspath(path)) or os.fspath(path))
    try:
        yield
    finally:
        _reading.reset(token)
