"""Streamlit drawing of one answered turn: the answer, its sources by document, the evidence, feedback.

Kept out of ``streamlit_app.py`` so the door stays a page layout; the logic it draws (grouping,
rendering, locating passages) lives in plain modules beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from ..errors import KBError
from ..types import Answer, Citation, Source
from .evidence import EvidenceError, document_path, passage
from .records import Turn, quote_text
from .render import answer_markdown, escape_markdown, group_sources, passage_markdown, relevance_badge
from .store import AppStore


def show_turn(turn: Turn, store: AppStore, kb: Any) -> None:
    """A finished turn: the answer (or why there is none), its sources, feedback buttons."""
    anchor = f"t{turn.id}"
    if turn.answer is None:
        st.warning(turn.error or "This question was not answered (the app stopped): ask it again.")
        return
    answer = turn.answer
    if not answer.found:
        st.info(answer.text)
        return
    st.markdown(answer_markdown(answer, anchor, turn.claims))
    unsupported = [c for c in turn.claims if not c.supported]
    if unsupported:
        st.caption(f"⚠ {len(unsupported)} sentence(s) not supported by the sources: check them before relying "
                   "on them.")
    if turn.status == "stopped":
        st.caption("Stopped before the end.")
    left, mid, right = st.columns([1, 1, 4])
    rated = store.feedback_for(turn.id)
    if left.button("Helpful", key=f"fb-helpful-{turn.id}", icon=":material/thumb_up:",
                   type="primary" if rated == "helpful" else "secondary"):
        store.give_feedback(turn, kb.name, "helpful")
        st.rerun()
    if mid.button("Wrong", key=f"fb-wrong-{turn.id}", icon=":material/thumb_down:",
                  type="primary" if rated == "wrong" else "secondary"):
        store.give_feedback(turn, kb.name, "wrong")
        st.rerun()
    if rated:
        right.caption(f"You marked this answer {rated}; it is in the feedback export.")
    with st.expander("Copy answer"):
        st.code(answer.text, language=None)
    show_sources(answer, anchor, kb)


def show_sources(answer: Answer, anchor: str, kb: Any) -> None:
    """Sources grouped by document, strongest first, each with a relevance badge and its evidence."""
    if not answer.sources:
        return
    cited = {c.number: c for c in answer.citations}
    label = "Sources" if cited else "Sources (none matched the answer; shown for checking)"
    with st.expander(f"{label} · {len(answer.sources)}", expanded=bool(cited)):
        for group in group_sources(answer):
            st.markdown(f"**{escape_markdown(group.name)}** · best {relevance_badge(group.best)}")
            for n, s in group.items:
                st.markdown(f'<a id="{anchor}-{n}"></a>', unsafe_allow_html=True)  # our own anchor only
                c = cited.get(n)
                mark = " · **cited**" if c else ""
                support = f" · support {c.support:.2f}" if c and c.support is not None else ""
                where = f" · p. {s.page}" if s.page is not None else ""
                where += f" · {escape_markdown(s.heading)}" if s.heading else ""
                st.markdown(f"\\[{n}\\]{where} · {relevance_badge(s.score)}{mark}{support}")
                st.markdown(passage_markdown(c) if c else escape_markdown(s.text))
                if st.toggle(f"Open {escape_markdown(s.label)}", key=f"ev-{anchor}-{n}"):
                    evidence(kb, s, c, key=f"{anchor}-{n}")


def evidence(kb: Any, source: Source, citation: Citation | None, *, key: str) -> None:
    """The cited place in its document: the PDF page with the span highlighted, or the text around it."""
    from .pdfview import RenderError, page_count, render_page

    try:
        path = document_path(source.source, {d.source for d in kb.documents()}, kb.name)
    except EvidenceError as exc:
        st.warning(str(exc))
        return
    span = None
    if citation is not None and citation.quote_start is not None and citation.quote_end is not None:
        span = (citation.quote_start, citation.quote_end)
    quote = quote_text(citation) if citation else source.text
    with st.container(border=True):
        if path.suffix.lower() == ".pdf" and source.page is not None:
            state = f"evpage-{key}"
            page = st.session_state.get(state, source.page)
            try:
                pages = page_count(path)
                shown = render_page(path, page, quote if page == source.page else "")
            except RenderError as exc:
                st.warning(str(exc))
                st.markdown(passage_markdown(citation) if citation else escape_markdown(source.text))
                shown = None
                pages = page
            if shown is not None:
                prev, info, nxt = st.columns([1, 3, 1])
                if prev.button("◀ previous page", key=f"evprev-{key}", disabled=page <= 1):
                    st.session_state[state] = page - 1
                    st.rerun()
                if nxt.button("next page ▶", key=f"evnext-{key}", disabled=page >= pages):
                    st.session_state[state] = page + 1
                    st.rerun()
                note = "" if page != source.page else (
                    " · cited passage highlighted" if shown.highlighted else
                    " · the cited text was not found on the rendered page (see the passage above)")
                info.caption(f"{path.name} · page {page} of {pages}{note}")
                st.image(shown.png, caption=f"{path.name}, p. {page}", width=760)
        else:
            try:
                p = passage(path, source, span, max_bytes=kb.settings.max_file_mb << 20)
            except KBError as exc:
                st.warning(str(exc))
                p = None
            if p is not None:
                if p.headings or source.heading:
                    st.caption(" › ".join(p.headings) if p.headings else source.heading.replace(" > ", " › "))
                if p.note:
                    st.caption(p.note)
                body = escape_markdown(p.before) + ":orange-background[" + escape_markdown(p.span) + "]" + \
                    escape_markdown(p.after)
                st.markdown(("… " if p.more_before else "") + body + (" …" if p.more_after else ""))
        download(path, key)


def download(path: Path, key: str) -> None:
    """The original file, read only when the button is clicked (a 200 MB PDF is not read on every redraw)."""
    st.download_button(f"Download {path.name}", path.read_bytes, file_name=path.name, key=f"evdl-{key}",
                       on_click="ignore")
