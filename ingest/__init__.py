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

# Bump when loaders or the splitter change what the same file turns into: a knowledge base records
# the version it was built with, so `kb rebuild` can be suggested when it differs.
PARSER_VERSION = 1

__all__ = [
    "LOADERS",
    "PARSER_VERSION",
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
