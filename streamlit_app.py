"""The browser door: manage knowledge bases, upload and index documents, chat with cited sources."""

from __future__ import annotations

from typing import Any

import streamlit as st

from kb_assistant.app import open_kb
from kb_assistant.assistant import Assistant, make_retriever
from kb_assistant.errors import KBError
from kb_assistant.generators import BACKENDS, make_generator, offered_backends
from kb_assistant.generators.base import ChatMessage
from kb_assistant.knowledge_base import KnowledgeBase, delete_kb, kb_names, validate_name
from kb_assistant.settings import ModelSettings, Settings, load_settings
from kb_assistant.types import Answer
from kb_assistant.web.jobs import IndexJob, start_index_job
from kb_assistant.web.render import answer_markdown, escape_markdown, passage_markdown

st.set_page_config(page_title="kb-assistant", page_icon="📚", layout="wide")


@st.cache_resource
def base_settings() -> Settings:
    return load_settings()


@st.cache_resource
def knowledge_base(name: str) -> KnowledgeBase:
    """One open knowledge base per name, shared by every session of this process."""
    return open_kb(base_settings(), name)


@st.cache_resource(show_spinner="Loading the answer model…")
def generator(model_key: str) -> Any:
    """One loaded model per model configuration (the whole ``ModelSettings``), shared by every session."""
    return make_generator(ModelSettings.model_validate_json(model_key), models_dir=base_settings().models_dir)


@st.cache_resource
def jobs() -> dict[str, IndexJob]:
    """The latest indexing job per knowledge base, visible to every session."""
    return {}


# -- sidebar ---------------------------------------------------------------------------------------

def sidebar(cfg: Settings) -> tuple[str, str]:
    st.sidebar.title("📚 kb-assistant")
    page = st.sidebar.radio("Page", ["Chat", "Knowledge bases"], horizontal=True, key="page")
    names = kb_names(cfg) or [cfg.default_kb]
    current = st.session_state.get("kb", names[0])
    if current not in names:
        names.append(current)
    kb = st.sidebar.selectbox("Knowledge base", names, index=names.index(current))
    st.session_state["kb"] = kb
    with st.sidebar.expander("Retrieval", expanded=False):
        cfg.retrieval_mode = st.selectbox("Mode", ["hybrid", "dense", "bm25"],
                                          index=["hybrid", "dense", "bm25"].index(cfg.retrieval_mode))
        cfg.keyword_index = st.selectbox(
            "Keyword index", ["auto", "jieba", "milvus"], index=["auto", "jieba", "milvus"].index(cfg.keyword_index),
            help="BM25 for keyword search: ours (jieba) on any store, or a Milvus store's own full-text index")
        cfg.top_k = st.slider("Sources per question", 1, 20, cfg.top_k)
        cfg.min_relevance = st.slider(
            "Relevance threshold", 0.0, 1.0, cfg.min_relevance, 0.05,
            help="0..1, higher = more relevant. Sources below it are dropped; if none is left, the answer "
                 "says the knowledge base does not contain it.")
    with st.sidebar.expander("Model", expanded=False):
        m = cfg.model
        backends = offered_backends(m.generator)
        chosen = st.selectbox("Backend", backends, index=backends.index(m.generator), key="backend")
        uses, typed = BACKENDS[chosen].uses, dict[str, Any](generator=chosen)
        if "base_url" in uses:
            typed["base_url"] = st.text_input("Server URL", value=m.base_url or "", key="base-url").strip() or None
            typed["api_model"] = st.text_input("Model name", value=m.api_model or "").strip() or None
        if "model_path" in uses:
            label = "GGUF file (empty = bundled Qwen2.5-0.5B)" if chosen == "llama-cpp" else "Checkpoint directory"
            typed["model_path"] = st.text_input(label, value=str(m.model_path or ""), key="model-path").strip() or None
        if "adapter" in uses:
            typed["adapter"] = st.text_input("Adapter directory (kb finetune)", value=str(m.adapter or ""),
                                             key="adapter").strip() or None
        for field, label in (("quantize", "Quantization"), ("device", "Device")):
            if field in uses:
                options = ModelSettings.choices(field)
                typed[field] = st.selectbox(label, options, index=options.index(getattr(m, field)), key=field)
        cfg.temperature = st.slider("Temperature", 0.0, 1.5, cfg.temperature, 0.05)
        cfg.max_new_tokens = st.number_input("Max answer tokens", 16, 4096, cfg.max_new_tokens, 16)
        window = st.number_input("Context budget (0 = the model's window)", 0, 131072,
                                 m.context_window or 0, 256)
        cfg.model = m.updated(**typed, context_window=window or None)
    return page, kb


# -- knowledge bases page --------------------------------------------------------------------------

def kb_page(cfg: Settings, name: str) -> None:
    st.header("Knowledge bases")
    with st.form("create", clear_on_submit=True):
        new = st.text_input("New knowledge base", placeholder="letters, digits, - _ or Chinese", key="new-kb")
        left, right = st.columns([1, 3])
        store = left.selectbox("Store", ["faiss", "milvus"], index=["faiss", "milvus"].index(cfg.store),
                               key="new-kb-store", help="FAISS on this machine, or Milvus (Lite file or a server)")
        uri = right.text_input("Milvus URI", value=cfg.store_uri or "", key="new-kb-uri",
                               placeholder="empty = a Milvus Lite file inside the knowledge base; or http://host:19530")
        if st.form_submit_button("Create", key="create-kb") and new.strip():
            try:
                where = cfg.model_copy(update={"store": store, "store_uri": uri.strip() or None})
                with open_kb(where, validate_name(new.strip())):  # created where asked; the kb remembers it
                    pass
                knowledge_base(new.strip())
                st.session_state["kb"] = new.strip()
                st.rerun()
            except KBError as exc:
                st.error(str(exc))
    kb = knowledge_base(name)
    st.subheader(f"{name}")
    upload_panel(kb, cfg)
    documents_panel(kb)
    with st.expander("Delete this knowledge base"):
        sure = st.checkbox(f"Yes, delete '{name}' and its index (your original files are not touched)",
                           key="confirm-delete")
        if st.button("Delete", type="secondary", disabled=not sure, key="delete-kb"):
            knowledge_base.clear()
            kb.close()
            delete_kb(cfg, name)
            st.session_state.pop("kb", None)
            st.rerun()


def upload_panel(kb: KnowledgeBase, cfg: Settings) -> None:
    from ingest import SUPPORTED_SUFFIXES

    files = st.file_uploader(f"Add documents (up to {cfg.max_file_mb} MB each)", accept_multiple_files=True,
                             type=[s.lstrip(".") for s in SUPPORTED_SUFFIXES], key="uploads")
    job = jobs().get(kb.name)
    busy = job is not None and job.running
    if files and st.button(f"Index {len(files)} file(s)", type="primary", key="index", disabled=busy):
        jobs()[kb.name] = start_index_job(kb, [(f.name, f.getvalue()) for f in files], cfg)
    job_status(kb.name)


@st.fragment(run_every=1.0)
def job_status(name: str) -> None:
    """Redrawn every second while a job runs, without blocking the rest of the page."""
    job = jobs().get(name)
    if job is None:
        return
    if job.running:
        st.progress(job.done / max(job.total, 1), text=f"indexing {job.done}/{job.total} {job.current[-60:]}")
        return
    for message in job.refused:
        st.error(message)
    if job.error:
        st.error(job.error)
    if job.report is not None:
        rows = [{"file": o.path.rsplit("/", 1)[-1], "status": o.status, "chunks": o.chunks, "reason": o.reason}
                for o in job.report.outcomes]
        st.dataframe(rows, hide_index=True, width="stretch")
        (st.warning if job.report.failed else st.success)(job.report.summary())


def documents_panel(kb: KnowledgeBase) -> None:
    docs = kb.documents()
    st.caption(f"{len(docs)} documents · {kb.count()} chunks")
    if not docs:
        st.info("No documents yet: upload some above.")
        return
    st.dataframe([{"document": d.source.rsplit("/", 1)[-1], "pages": d.pages or "", "chunks": d.chunks,
                   "path": d.source} for d in docs], hide_index=True, width="stretch")
    col1, col2 = st.columns([3, 1])
    target = col1.selectbox("Document", [d.source for d in docs], format_func=lambda s: s.rsplit("/", 1)[-1])
    if col2.button("Remove", key="remove-doc"):
        report = kb.remove([target])
        st.success(report.summary())
        st.rerun()
    if st.button("Re-index all (re-read files with the current settings)", key="rebuild"):
        with st.spinner("re-indexing…"):
            report = kb.rebuild()
        st.success(report.summary())


# -- chat page -------------------------------------------------------------------------------------

def render_sources(answer: Answer, anchor: str) -> None:
    if not answer.found or not answer.sources:
        return
    cited = {c.number: c for c in answer.citations}
    label = "Sources" if cited else "Sources (none matched the answer; shown for checking)"
    with st.expander(f"{label} · {len(answer.sources)}", expanded=bool(cited)):
        for n, s in enumerate(answer.sources, 1):
            st.markdown(f'<a id="{anchor}-{n}"></a>', unsafe_allow_html=True)  # our own anchor only
            mark = " · cited" if n in cited else ""
            support = cited[n].support if n in cited else None
            extra = f" · support {support:.2f}" if support is not None else ""
            st.markdown(f"**\\[{n}\\] {escape_markdown(s.label)}** · relevance {s.score:.2f}{mark}{extra}")
            st.markdown(passage_markdown(cited[n]) if n in cited else escape_markdown(s.text))


def chat_page(cfg: Settings, name: str) -> None:
    kb = knowledge_base(name)
    st.header(f"Chat · {name}")
    key = f"history:{name}"
    turns: list[tuple[str, Answer | str]] = st.session_state.setdefault(key, [])
    col1, col2 = st.columns([1, 1])
    if col1.button("Clear chat", key="clear"):
        turns.clear()
    regenerate = col2.button("Regenerate last answer", key="regenerate", disabled=not turns)
    again = turns.pop()[0] if regenerate and turns else None
    for i, (asked, answer) in enumerate(turns):
        st.chat_message("user").text(asked)
        with st.chat_message("assistant"):
            show_answer(answer, f"a{i}")
    question = st.chat_input("Ask a question about your documents") or again
    if not question:
        return
    st.chat_message("user").text(question)
    history = [m for q, a in turns if isinstance(a, Answer)
               for m in (ChatMessage("user", q), ChatMessage("assistant", a.text))]
    with st.chat_message("assistant"):
        try:
            model = generator(cfg.model.cache_key())
            stream = Assistant(kb, model, cfg, make_retriever(kb, cfg)).ask(question, history)
            placeholder = st.empty()
            placeholder.write_stream(stream)
            answer = stream.result()
            placeholder.empty()
            show_answer(answer, f"a{len(turns)}")
            turns.append((question, answer))
        except KBError as exc:
            st.warning(str(exc))
            turns.append((question, str(exc)))


def show_answer(answer: Answer | str, anchor: str) -> None:
    if isinstance(answer, str):
        st.warning(answer)
        return
    if not answer.found:
        st.info(answer.text)
        return
    st.markdown(answer_markdown(answer, anchor))
    with st.expander("Copy answer"):
        st.code(answer.text, language=None)
    render_sources(answer, anchor)


def main() -> None:
    cfg = base_settings().model_copy()  # per-run copy: sidebar choices never leak into other sessions
    page, name = sidebar(cfg)
    if page == "Knowledge bases":
        kb_page(cfg, name)
    else:
        chat_page(cfg, name)


main()
