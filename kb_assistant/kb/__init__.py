"""The knowledge-base core: one :class:`KnowledgeBase` opens, indexes, removes, rebuilds, searches and
closes; the modules beside it are its parts.

- ``knowledge_base.py``: opening (manifest, store, lock) and the public operations
- ``manifest.py``: the one record of how a knowledge base was built, with numbered migrations
- ``storage.py``: which store a knowledge base lives in, and its writer lock
- ``catalog.py``: names, listing and deletion of the knowledge bases in a data directory
- ``indexer.py``: where chunks are written (incremental index, moves, prune, remove, rebuild)
  (``reading.py``: a file read within the limits, large text files block by block; ``records.py``:
  chunks into store records)
- ``retriever.py``: where a query is answered with sources (dense + keyword, fused, thresholded)
- ``keyword.py`` / ``bm25.py`` (``bm25_segment.py``, ``bm25_build.py``, ``bm25_delta.py``, ``bm25_query.py``): the
  keyword leg;
  ``embed_cache.py``: vectors already computed
- ``payload.py``: how a chunk is stored in the vector store
"""

from .catalog import KBSummary, delete_kb, exists, kb_names, kb_summaries, validate_name
from .indexer import ProgressFn
from .knowledge_base import DEFAULT_WAIT, DocumentInfo, KnowledgeBase
from .manifest import Manifest, StoreRecord, read_manifest
from .retriever import Retriever
from .storage import KBBusyError

__all__ = [
    "DEFAULT_WAIT",
    "DocumentInfo",
    "KBBusyError",
    "KBSummary",
    "KnowledgeBase",
    "Manifest",
    "ProgressFn",
    "Retriever",
    "StoreRecord",
    "delete_kb",
    "exists",
    "kb_names",
    "kb_summaries",
    "read_manifest",
    "validate_name",
]
