"""The browser door: manage knowledge bases, upload and index documents, chat with cited sources."""

from __future__ import annotations

from typing import Any

import streamlit as st

from kb_assistant.app import open_kb
from kb_assistant.assistant import Assistant
from kb_assistant.errors import KBError, user_message
from kb_assistant.generators import BACKENDS, make_generator, offered_backends
from kb_assistant.kb import KnowledgeBase, delete_kb, kb_names, validate_name
from kb_assistant.settings import ModelSettings, Settings, load_settings
from kb_assistant.web.answers import Workers
from kb_assistant.web.export import conversation_markdown, feedback_jsonl
from kb_assistant.web.jobs import IndexJob, start_index_job
from kb_assistant.web.kbinfo import document_rows, last_indexed, last_synced
from kb_assistant.web.render import escape_markdown
from kb_assistant.web.store import AppStore, Conversation
from kb_assistant.web.views import show_turn

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
    """The latest indexing job per knowledge base, visible to every session (and after a reload)."""
    return {}


@st.cache_resource
def app_store() -> AppStore:
    """Conversations, feedback and indexing runs in the data directory's app.sqlite."""
    return AppStore.for_settings(base_settings())


@st.cache_resource
def workers() -> Workers:
    """The answer workers of this process, one per conversation, shared by every session."""
    return Workers(app_store())


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
    st.caption(f"embedder {escape_markdown(kb.embedder.id)} · store {kb.manifest.store_backend if kb.manifest else '?'}"
               f" · chunks of {cfg.chunk_size} characters ({cfg.chunk_overlap} overlap)")
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
        store = app_store()
        jobs()[kb.name] = start_index_job(kb, [(f.name, f.getvalue()) for f in files], cfg, on_done=lambda job: (
            store.record_index_run(job.kb_name, job.report, job.refused, job.error)))
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
    rows = document_rows(docs)
    gone = sum(1 for r in rows if r["on disk"] != "yes")
    run = app_store().last_index_run(kb.name)
    st.caption(f"{len(docs)} documents · {kb.count()} chunks · {last_indexed(kb, run)}{last_synced(kb)}"
               + (f" · {gone} no longer on disk" if gone else ""))
    if run is not None and (run.failed or run.error):
        with st.expander(f"Failed in the last indexing run · {len(run.failed)}", expanded=False):
            if run.error:
                st.error(run.error)
            st.dataframe([{"file": f.rsplit("/", 1)[-1], "reason": r} for f, r in run.failed], hide_index=True,
                         width="stretch")
    if not docs:
        st.info("No documents yet: upload some above.")
        return
    st.dataframe(rows, hide_index=True, width="stretch")
    col1, col2 = st.columns([3, 1])
    target = col1.selectbox("Document", [d.source for d in docs], format_func=lambda s: s.rsplit("/", 1)[-1],
                            key="remove-target")
    if col2.button("Remove", key="remove-doc"):
        report = kb.remove([target])
        st.success(report.summary())
        st.rerun()
    if st.button("Re-index all (re-read files with the current settings)", key="rebuild"):
        with st.spinner("re-indexing…"):
            report = kb.rebuild()
        st.success(report.summary())


# -- chat page -------------------------------------------------------------------------------------

def current_conversation(store: AppStore, name: str) -> Conversation | None:
    """The conversation in the address (``?c=``, so a reload keeps it) or this session's; none for a new visit.

    A new visit starts a new conversation rather than joining the latest one: two people asking at
    the same time must not get each other's questions as history. Older ones are in the picker.
    """
    wanted = st.query_params.get("c") or st.session_state.get(f"conversation:{name}")
    conv = store.conversation(int(str(wanted))) if str(wanted or "").isdigit() else None
    if conv is None or conv.kb != name:
        st.query_params.pop("c", None)
        return None
    select(name, conv.id)
    return conv


def select(name: str, conversation_id: int | None) -> None:
    """Make a conversation this session's and put it in the address, so a reload comes back to it."""
    if conversation_id is None:
        st.session_state.pop(f"conversation:{name}", None)
        st.query_params.pop("c", None)
    else:
        st.session_state[f"conversation:{name}"] = conversation_id
        st.query_params["c"] = str(conversation_id)


def conversation_bar(store: AppStore, name: str, conv: Conversation | None) -> None:
    """Pick, start, rename, delete and export conversations of this knowledge base."""
    convs = store.conversations(name)
    pick, new, export, feedback = st.columns([4, 2, 2, 2], vertical_alignment="bottom")
    ids: list[int | None] = [c.id for c in convs] if conv is not None else [None, *(c.id for c in convs)]
    titles = {c.id: c.title for c in convs}
    chosen = pick.selectbox("Conversation", ids, index=ids.index(conv.id if conv else None),
                            format_func=lambda i: titles.get(i, "New conversation") if i else "New conversation",
                            key=f"pick-conversation-{conv.id if conv else 0}")
    if chosen != (conv.id if conv else None):
        select(name, chosen)
        st.rerun()
    if new.button("New conversation", key="new-conversation", icon=":material/add:", disabled=conv is None):
        select(name, None)  # created with its first question
        st.rerun()
    rows = store.feedback(kb=name)
    feedback.download_button(f"Feedback · {len(rows)}", lambda: feedback_jsonl(store.feedback(kb=name)),
                             file_name=f"feedback-{name}.jsonl", mime="application/x-ndjson", key="export-feedback",
                             on_click="ignore", disabled=not rows, icon=":material/download:",
                             help="helpful / wrong ratings as JSONL: question and answer for kb finetune, "
                                  "SQuAD-style context and answers (see kb feedback export for kb eval)")
    if conv is None:
        return
    export.download_button("Markdown", lambda: conversation_markdown(conv, store.turns(conv.id)),
                           file_name=f"conversation-{conv.id}.md", mime="text/markdown", key="export-conversation",
                           on_click="ignore", icon=":material/download:",
                           help="this conversation with its citations, as Markdown")
    with st.expander("Rename · delete"):
        title = st.text_input("Title", value=conv.title, key=f"title-{conv.id}")
        if st.button("Rename", key="rename-conversation") and title.strip() != conv.title:
            try:
                store.rename(conv.id, title)
                st.rerun()
            except KBError as exc:
                st.error(str(exc))
        sure = st.checkbox("Yes, delete this conversation", key=f"confirm-delete-conversation-{conv.id}")
        if st.button("Delete conversation", key="delete-conversation", disabled=not sure):
            store.delete_conversation(conv.id)
            select(name, None)
            st.rerun()


def model_caption(cfg: Settings, kb: KnowledgeBase, model: Any) -> None:
    budget = cfg.model.context_window or model.context_window
    m = cfg.model
    name = m.model_path.name if m.model_path is not None else (m.api_model or "bundled Qwen2.5-0.5B")
    st.caption(f"Model {escape_markdown(str(name))} ({m.generator}) · embedder "
               f"{escape_markdown(kb.embedder.id)} · context budget {budget} tokens, {cfg.max_new_tokens} of "
               f"them for the answer · {cfg.retrieval_mode} retrieval, top {cfg.top_k}")


def chat_page(cfg: Settings, name: str) -> None:
    kb = knowledge_base(name)
    store = app_store()
    st.header(f"Chat · {name}")
    try:
        gen = generator(cfg.model.cache_key())
        model_caption(cfg, kb, gen)
    except KBError as exc:
        st.error(str(exc))
        gen = None
    conv = current_conversation(store, name)
    conversation_bar(store, name, conv)
    turns = store.turns(conv.id) if conv else []
    for turn in turns:
        if not turn.pending:  # pending ones (always the latest) are drawn live below
            st.chat_message("user").text(turn.question)
            with st.chat_message("assistant"):
                show_turn(turn, store, kb)
    pending = [t.id for t in turns if t.pending]
    if conv is not None and pending:
        live_turns(conv.id, tuple(pending))
    last = turns[-1] if turns else None
    if conv is not None and last is not None and not pending and gen is not None and st.button(
            "Regenerate last answer", key="regenerate"):
        store.delete_turn(last.id)
        ask(store, conv.id, last.question, kb, gen, cfg)
    question = st.chat_input("Ask a question about your documents (sent while an answer is written, it waits "
                             "its turn)")
    if question:
        if gen is None:
            st.error("No answer model is loaded: fix the model settings in the sidebar first.")
            return
        if conv is None:
            conv = store.create_conversation(name)
            select(name, conv.id)
        ask(store, conv.id, question, kb, gen, cfg)


def ask(store: AppStore, conversation_id: int, question: str, kb: KnowledgeBase, gen: Any, cfg: Settings) -> None:
    """Store the question and queue it; a worker thread answers it, outliving this page run."""
    settings = cfg.model_copy()  # the choices of this moment, for this question

    def start(q: str, history: Any) -> Any:
        return Assistant(kb, gen, settings).ask(q, history)

    workers().get(conversation_id).submit(question, start, gen)
    st.rerun()


@st.fragment(run_every=0.5)
def live_turns(conversation_id: int, pending: tuple[int, ...]) -> None:
    """The answers being written, redrawn twice a second; the page reruns when one is finished."""
    store = app_store()
    for turn_id in pending:
        turn = store.turn(turn_id)
        if turn is None or not turn.pending:
            st.rerun()  # finished (or deleted): draw it as a stored turn
            return
        live = workers().live(conversation_id, turn_id)
        st.chat_message("user").text(turn.question)
        with st.chat_message("assistant"):
            if live is None:  # no worker of this process holds it: it was asked before a restart
                store.mark_interrupted(turn_id)
                st.rerun()
                return
            if live.text:
                st.markdown(escape_markdown(live.text) + " ▌")
            elif live.waiting_for_model:
                st.info("Waiting for the model: another answer is being written…")
            elif live.started:
                st.caption("Searching the knowledge base and reading the sources…")
            else:
                st.info("Queued: it will be answered after the question before it.")
            if st.button("Stop", key=f"stop-{turn_id}"):
                workers().get(conversation_id).stop(turn_id)


def main() -> None:
    cfg = base_settings().model_copy()  # per-run copy: sidebar choices never leak into other sessions
    page, name = sidebar(cfg)
    if page == "Knowledge bases":
        kb_page(cfg, name)
    else:
        chat_page(cfg, name)


def run_page() -> None:
    """The door's one error boundary: an expected failure (a bad setting, a store or model that cannot
    be opened, a busy knowledge base) is one message that says what to do; a bug keeps its traceback."""
    try:
        main()
    except Exception as exc:
        message = user_message(exc)
        if message is None:
            raise
        st.error(message)


run_page()
