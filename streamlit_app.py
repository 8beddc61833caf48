"""The browser door: upload documents, chat with a knowledge base, check the cited sources."""

from __future__ import annotations

import streamlit as st

from kb_assistant.app import load_generator, open_kb
from kb_assistant.assistant import Assistant
from kb_assistant.errors import KBError
from kb_assistant.generators.base import ChatMessage
from kb_assistant.knowledge_base import KnowledgeBase, kb_names, validate_name
from kb_assistant.settings import Settings, load_settings
from kb_assistant.types import Answer
from kb_assistant.uploads import index_uploads

st.set_page_config(page_title="kb-assistant", page_icon="📚", layout="wide")


@st.cache_resource
def settings() -> Settings:
    return load_settings()


@st.cache_resource
def knowledge_base(name: str) -> KnowledgeBase:
    """One open knowledge base per name, shared by every session of this process."""
    return open_kb(settings(), name)


@st.cache_resource(show_spinner="Loading the answer model…")
def generator():  # type: ignore[no-untyped-def]
    return load_generator(settings())


def render_sources(answer: Answer) -> None:
    cited = {c.number for c in answer.citations}
    label = "Sources" if cited else "Sources (not cited by the model; shown for checking)"
    with st.expander(f"{label} · {len(answer.sources)}", expanded=False):
        for n, s in enumerate(answer.sources, 1):
            mark = "✅ cited" if n in cited else ""
            st.markdown(f"**[{n}] {s.label}** · score {s.score:.2f} {mark}")
            st.text(s.text)  # plain text, never HTML or markdown from a document


def sidebar(cfg: Settings) -> str:
    st.sidebar.title("📚 kb-assistant")
    names = kb_names(cfg) or [cfg.default_kb]
    choice = st.sidebar.selectbox("Knowledge base", names, index=0)
    new = st.sidebar.text_input("New knowledge base", placeholder="name, then Enter")
    if new:
        try:
            choice = validate_name(new.strip())
        except KBError as exc:
            st.sidebar.error(str(exc))
    cfg.top_k = st.sidebar.slider("Sources per question (top-k)", 1, 20, cfg.top_k)
    return choice


def upload_panel(kb: KnowledgeBase, cfg: Settings) -> None:
    from ingest import SUPPORTED_SUFFIXES

    files = st.file_uploader("Add documents", accept_multiple_files=True,
                             type=[s.lstrip(".") for s in SUPPORTED_SUFFIXES])
    if not files or not st.button(f"Index {len(files)} file(s)", type="primary", key="index"):
        return
    bar = st.progress(0.0, text="indexing…")
    report, refused = index_uploads(
        kb, [(f.name, f.getvalue()) for f in files], cfg,
        progress=lambda done, total, path: bar.progress(done / max(total, 1), text=path[-60:] or "done"),
    )
    for message in refused:
        st.error(message)
    for o in report.outcomes:
        name = o.path.rsplit("/", 1)[-1]
        if o.status == "failed":
            st.error(f"failed: {name}: {o.reason}")
        else:
            st.caption(f"{o.status}: {name}")
    st.success(report.summary())


def chat_panel(kb: KnowledgeBase, cfg: Settings) -> None:
    key = f"history:{kb.name}"
    turns: list[tuple[str, Answer | str]] = st.session_state.setdefault(key, [])
    if st.button("Clear chat", key="clear"):
        turns.clear()
    for question, answer in turns:
        st.chat_message("user").text(question)
        with st.chat_message("assistant"):
            st.markdown(answer.text if isinstance(answer, Answer) else answer)
            if isinstance(answer, Answer):
                render_sources(answer)
    question = st.chat_input("Ask a question about your documents")
    if not question:
        return
    st.chat_message("user").text(question)
    history = [m for q, a in turns if isinstance(a, Answer)
               for m in (ChatMessage("user", q), ChatMessage("assistant", a.text))]
    with st.chat_message("assistant"):
        try:
            stream = Assistant(kb, generator(), cfg).ask(question, history)
            st.write_stream(stream)
            answer = stream.result()
            render_sources(answer)
            turns.append((question, answer))
        except KBError as exc:
            st.warning(str(exc))
            turns.append((question, str(exc)))


def main() -> None:
    cfg = settings().model_copy()  # per-run copy: sidebar choices never leak into other sessions
    name = sidebar(cfg)
    kb = knowledge_base(name)
    st.header(f"Knowledge base: {name}")
    docs = kb.documents()
    st.caption(f"{len(docs)} documents · {sum(d.chunks for d in docs)} chunks")
    with st.expander("Documents", expanded=not docs):
        upload_panel(kb, cfg)
        for d in docs:
            pages = f", {d.pages} pages" if d.pages else ""
            st.text(f"{d.source}  ({d.chunks} chunks{pages})")
    chat_panel(kb, cfg)


main()
