"""A LangChain retriever over a knowledge base, for apps built on LangChain (``pip install
'kb-assistant[langchain]'``). Only the framework's seam is implemented; the search is ours (hybrid,
thresholded, as ``kb search``), and langchain-core is imported when a retriever is made, not before.

To chat through LangChain, point its OpenAI chat model at ``kb serve``:
``ChatOpenAI(base_url="http://127.0.0.1:8000/v1", model="kb:NAME", api_key=KEY)``."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..errors import KBError
from ..settings import Settings, load_settings

if TYPE_CHECKING:
    from langchain_core.retrievers import BaseRetriever

    from ..kb import KnowledgeBase


def as_document(source: Any) -> Any:
    """One of our ``Source`` objects as a LangChain ``Document``: ``Source.to_dict`` in its metadata (the
    one record of a source's fields: page, span, heading, stale), under LangChain's key ``source`` for the
    file, with ``relevance`` and ``chunk_id`` for our score and id."""
    from langchain_core.documents import Document

    fields = source.to_dict()
    text = fields.pop("text")
    metadata = {"source": fields.pop("file"), "chunk_id": fields.pop("id"), "relevance": fields.pop("score"),
                **fields}
    return Document(page_content=text, metadata=metadata)


@lru_cache(maxsize=1)
def _retriever_class() -> type:
    try:
        from langchain_core.callbacks import CallbackManagerForRetrieverRun
        from langchain_core.retrievers import BaseRetriever
    except ImportError:
        raise KBError("the LangChain integration needs langchain-core: pip install 'kb-assistant[langchain]'") from None
    from pydantic import ConfigDict

    class KnowledgeBaseRetriever(BaseRetriever):  # type: ignore[misc]
        """Retrieves passages of one knowledge base; ``k`` of them, best first."""

        model_config = ConfigDict(arbitrary_types_allowed=True)
        kb: Any
        searcher: Any
        k: int = 5

        def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Any]:
            return [as_document(s) for s in self.searcher.search(query, self.k)]

    return KnowledgeBaseRetriever


def knowledge_base_retriever(name: str | None = None, *, settings: Settings | None = None, k: int | None = None,
                             kb: KnowledgeBase | None = None) -> BaseRetriever:
    """A LangChain ``BaseRetriever`` over knowledge base ``name`` (default: the settings' default), or over
    an already opened ``kb``. ``k``: passages per query (default ``top_k``)."""
    cls = _retriever_class()
    cfg = settings or (kb.settings if kb is not None else load_settings())
    if kb is None:
        from ..app import open_kb

        kb = open_kb(cfg, name, create=False)
    retriever: BaseRetriever = cls(kb=kb, searcher=kb.retriever(cfg), k=k or cfg.top_k)
    return retriever
