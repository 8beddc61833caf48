"""Turn files into documents and documents into chunks; knows nothing of storage."""

from ingest.encoding import decode_bytes, read_text
from ingest.errors import IngestError
from ingest.loaders import (
    LOADERS,
    STREAMABLE_SUFFIXES,
    SUPPORTED_SUFFIXES,
    LoaderSpec,
    load_file,
    missing_requirements,
    stream_text,
)
from ingest.ocr import IMAGE_SUFFIXES
from ingest.splitter import ChineseTextSplitter, Splitter
from ingest.structure import HEADING_SEPARATOR
from ingest.types import Chunk, Document, LoadOptions, OcrOptions, Section

# Bump when loaders or the splitter change what the same file turns into: a knowledge base records
# the version it was built with, so `kb rebuild` can be suggested when it differs.
# 2: heading paths and tables as sections (unstructured, python-docx styles), OCR of scans and images.
PARSER_VERSION = 2

__all__ = [
    "HEADING_SEPARATOR",
    "IMAGE_SUFFIXES",
    "LOADERS",
    "PARSER_VERSION",
    "STREAMABLE_SUFFIXES",
    "SUPPORTED_SUFFIXES",
    "Section",
    "Chunk",
    "ChineseTextSplitter",
    "Document",
    "IngestError",
    "LoadOptions",
    "LoaderSpec",
    "OcrOptions",
    "Splitter",
    "decode_bytes",
    "load_file",
    "missing_requirements",
    "read_text",
    "stream_text",
]
