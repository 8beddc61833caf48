"""The two collections behind a ``MilvusStore``: records (vector, payload, optional BM25) and its state row."""

from __future__ import annotations

from typing import Any

from . import milvus_lite_server as lite
from .errors import VectorStoreError

TEXT_MAX_BYTES = 65535  # Milvus's VARCHAR limit: longer chunk texts are cut for the BM25 field only
JIEBA = {"tokenizer": "jieba"}  # Milvus's Chinese analyzer; Milvus Lite 3.2 has no {"type": "chinese"}


def create_collections(
    client: Any, collection: str, states: str, *, dim: int, full_text: bool | None, index_type: str,
    index_params: dict[str, Any], uri: str,
) -> bool:
    """Create and load the records collection and the state collection; returns whether the
    records got Milvus's BM25 field (``full_text=None``: where the server has it, Milvus 2.5+)."""
    from pymilvus import DataType, Function, FunctionType

    version = lite.server_version(client)
    if full_text is None:
        full_text = version >= (2, 5)
    schema = client.create_schema(auto_id=True, enable_dynamic_field=False)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("rid", DataType.INT64)
    schema.add_field("born", DataType.INT64)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("payload", DataType.JSON)
    index = client.prepare_index_params()
    index.add_index("vector", index_type=index_type, metric_type="IP", params=index_params)
    # Every write looks its ids up (duplicates, deletions): without this each lookup scans all rows.
    # INVERTED scalar indexes came with Milvus 2.4; 2.3 servers index integers with STL_SORT.
    index.add_index("rid", index_type="INVERTED" if version >= (2, 4) else "STL_SORT")
    if full_text:
        if version < (2, 5):
            raise VectorStoreError(
                f"full-text (BM25) search needs Milvus 2.5 or later; {uri} runs "
                f"{'.'.join(map(str, version))}: upgrade the server or keep kb-assistant's own BM25"
            )
        schema.add_field("text", DataType.VARCHAR, max_length=TEXT_MAX_BYTES, enable_analyzer=True,
                         analyzer_params=JIEBA)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                     input_field_names=["text"], output_field_names=["sparse"]))
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    _create_collection(client, collection, schema, index)
    side = client.create_schema(auto_id=False, enable_dynamic_field=False)
    side.add_field("key", DataType.VARCHAR, is_primary=True, max_length=64)
    side.add_field("value", DataType.JSON)
    side.add_field("unused", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field
    side_index = client.prepare_index_params()
    side_index.add_index("unused", index_type="FLAT", metric_type="L2")
    _create_collection(client, states, side, side_index)
    return bool(full_text)


def _create_collection(client: Any, name: str, schema: Any, index: Any) -> None:
    # sync=False: pymilvus would otherwise poll the (empty) index build every 0.5 s, and Milvus
    # Lite logs a traceback for the timestamp call that polling makes.
    client.create_collection(name, schema=schema, consistency_level="Strong")
    client.create_index(name, index, sync=False)
    client.load_collection(name)
