"""LangChain: our retriever in a small chain, and LangChain's OpenAI chat model pointed at the server."""

from __future__ import annotations

import sys

import pytest

from kb_assistant.errors import KBError
from kb_assistant.integrations import langchain as integration
from kb_assistant.integrations.langchain import knowledge_base_retriever
from kb_assistant.settings import Settings

from .conftest import Running


def test_retriever_returns_documents_with_file_page_and_relevance(settings: Settings, docs_kb: str) -> None:
    retriever = knowledge_base_retriever("docs", settings=settings, k=2)
    docs = retriever.invoke("What is the VPN server address?")
    assert docs and docs[0].metadata["source"].endswith("vpn.md") and "vpn-gw" in docs[0].page_content
    assert {"page", "start", "end", "relevance", "heading", "chunk_id"} <= set(docs[0].metadata) and len(docs) <= 2
    retriever.kb.close()  # type: ignore[attr-defined]


def test_retriever_in_a_chain_with_the_server_as_the_chat_model(server: Running) -> None:
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnablePassthrough
    from langchain_openai import ChatOpenAI

    def context(docs: list) -> str:  # type: ignore[type-arg]
        return "\n\n".join(f"[{n}] {d.metadata['source']}\n{d.page_content}" for n, d in enumerate(docs, 1))

    retriever = knowledge_base_retriever("docs", settings=server.settings, k=1)
    prompt = ChatPromptTemplate.from_messages([("user", "{context}\n\nQuestion: {question}")])
    llm = ChatOpenAI(base_url=server.v1, api_key="none", model="echo", max_retries=0)  # type: ignore[arg-type]
    chain = {"context": retriever | context, "question": RunnablePassthrough()} | prompt | llm | StrOutputParser()
    # the echo model quotes the first sentence of source [1]: the retrieved passage went through the chain
    assert chain.invoke("What is the VPN server address?") == "The VPN server address is vpn-gw on port 1194, " \
        "for staff only. [1]"
    retriever.kb.close()  # type: ignore[attr-defined]


def test_chat_openai_answers_from_a_knowledge_base(server: Running) -> None:
    from langchain_openai import ChatOpenAI

    key = server.key("read", kb="docs")
    llm = ChatOpenAI(base_url=server.v1, api_key=key, model="kb:docs", max_retries=0)  # type: ignore[arg-type]
    reply = llm.invoke("What is the VPN server address?")
    assert "vpn-gw" in str(reply.content) and "[1]" in str(reply.content)
    streamed = "".join(str(c.content) for c in llm.stream("What is the VPN server address?"))
    assert "vpn-gw" in streamed
    denied = ChatOpenAI(base_url=server.v1, api_key="kbk-wrong", model="kb:docs", max_retries=0)  # type: ignore[arg-type]
    import openai

    with pytest.raises(openai.AuthenticationError):
        denied.invoke("hi")


def test_missing_langchain_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    integration._retriever_class.cache_clear()
    monkeypatch.setitem(sys.modules, "langchain_core.retrievers", None)
    try:
        with pytest.raises(KBError, match=r"pip install 'kb-assistant\[langchain\]'"):
            knowledge_base_retriever("docs", settings=settings)
    finally:
        integration._retriever_class.cache_clear()
