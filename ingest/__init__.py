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
from ingest.splitter import ChineseTextSplitter, Splitter
from ingest.types import Chunk, Document

__all__ = [
    "LOADERS",
    "STREAMABLE_SUFFIXES",
    "SUPPORTED_SUFFIXES",
    "Chunk",
    "ChineseTextSplitter",
    "Document",
    "IngestError",
    "LoaderSpec",
    "Splitter",
    "decode_bytes",
    "load_file",
    "missing_requirements",
    "read_text",
    "stream_text",
]
