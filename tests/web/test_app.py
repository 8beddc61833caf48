"""The chat page through AppTest: queueing, persistence, feedback, evidence and the knowledge-base page."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from kb_assistant.generators.echo import EchoGenerator
from tests.ingest.pdfgen import pdf_bytes
from tests.test_streamlit_app import APP, ask, goto, settle, store, upload_and_index

PDF = pdf_bytes(["Facilities manual. Chapter one covers the office layout.",
                 "The emergency diesel generator is tested every fourteen days by the facilities team.",
                 "Chapter three: parking."])
MD = b"# Operations handbook\n## Network\nThe VPN server uses port 1194 for all staff.\n"


def texts(app: AppTest) -> list[str]:
    return [t.value for t in app.text] + [m.value for m in app.markdown] + [i.value for i in app.info]


def new_session(**query: str) -> AppTest:
    """Another browser tab, or a reload (with the address's query): a new session of the same process."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(query)
    at.run()
    assert not at.exception
    return at


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """The echo model holds every answer after its first piece until the gate opens."""
    opened = threading.Event()
    original = EchoGenerator._stream_prompt

    def held(self: EchoGenerator, prompt: str, **kw: Any) -> Iterator[str]:
        for i, piece in enumerate(original(self, prompt, **kw)):
            yield piece
            if i == 0:
                opened.wait(30)

    monkeypatch.setattr(EchoGenerator, "_stream_prompt", held)
    yield opened
    opened.set()


def wait_for(condition: Any) -> None:
    for _ in range(600):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


@pytest.fixture
def indexed(app: AppTest) -> AppTest:
    upload_and_index(app, [("facilities.pdf", PDF, "application/pdf"), ("ops.md", MD, "text/markdown")])
    return goto(app, "Chat")


def test_a_question_sent_while_the_answer_streams_waits_and_both_complete(indexed: AppTest,
                                                                          gate: threading.Event) -> None:
    app = indexed
    app.chat_input[0].set_value("How often is the diesel generator tested?").run()
    (conv,) = store().conversations("default")
    wait_for(lambda: store().turns(conv.id)[0].status == "running")
    app.chat_input[0].set_value("Which port does the VPN use?").run()
    assert not app.exception
    assert [t.status for t in store().turns(conv.id)] == ["running", "queued"]
    shown = texts(app)
    assert "How often is the diesel generator tested?" in shown and "Which port does the VPN use?" in shown
    assert any("Queued" in s for s in shown)  # the second waits its turn, visibly
    gate.set()
    settle(app)
    first, second = store().turns(conv.id)
    assert (first.status, second.status) == ("done", "done")
    assert "fourteen days" in first.answer.text and "1194" in second.answer.text
    shown = texts(app)
    assert any("fourteen days" in s for s in shown) and any("1194" in s for s in shown)


def test_two_tabs_asking_at_once_both_get_their_answers(indexed: AppTest, gate: threading.Event) -> None:
    other = goto(new_session(), "Chat")
    indexed.chat_input[0].set_value("How often is the diesel generator tested?").run()
    other.chat_input[0].set_value("Which port does the VPN use?").run()
    assert not indexed.exception and not other.exception
    gate.set()
    settle(indexed)
    settle(other)
    questions = {t.question: t for c in store().conversations("default") for t in store().turns(c.id)}
    assert set(questions) == {"How often is the diesel generator tested?", "Which port does the VPN use?"}
    assert all(t.status == "done" and t.answer is not None for t in questions.values())
    assert any("fourteen days" in s for s in texts(indexed)) and any("1194" in s for s in texts(other))


def test_conversations_survive_reload_and_restart_and_can_be_renamed_and_deleted(indexed: AppTest) -> None:
    ask(indexed, "Which port does the VPN use?")
    (conv,) = store().conversations("default")
    assert indexed.query_params["c"] == str(conv.id)  # in the address, which a reload keeps
    reloaded = goto(new_session(c=str(conv.id)), "Chat")
    assert "Which port does the VPN use?" in texts(reloaded) and any("1194" in s for s in texts(reloaded))

    import streamlit as st

    st.cache_resource.clear()  # a restart: nothing cached, everything read back from app.sqlite
    restarted = goto(new_session(), "Chat")  # a new visit starts a new conversation; the old one is listed
    assert "Which port does the VPN use?" not in texts(restarted)
    restarted.selectbox(key="pick-conversation-0").set_value(conv.id).run()
    assert "Which port does the VPN use?" in texts(restarted)
    restarted.text_input(key=f"title-{conv.id}").set_value("VPN questions")
    restarted.button(key="rename-conversation").click().run()
    assert store().conversation(conv.id).title == "VPN questions"
    assert restarted.get("download_button")  # the Markdown export (its content is tested in tests/web)
    restarted.checkbox(key=f"confirm-delete-conversation-{conv.id}").check().run()
    restarted.button(key="delete-conversation").click().run()
    assert not restarted.exception and store().conversations("default") == []
    assert "Which port does the VPN use?" not in texts(restarted)


def test_an_answer_asked_before_a_restart_is_kept_as_a_question_to_ask_again(indexed: AppTest,
                                                                              gate: threading.Event) -> None:
    indexed.chat_input[0].set_value("Which port does the VPN use?").run()
    (conv,) = store().conversations("default")
    wait_for(lambda: store().turns(conv.id)[0].status == "running")
    import streamlit as st

    st.cache_resource.clear()  # the process's workers are gone, as after a restart
    app = goto(new_session(c=str(conv.id)), "Chat")
    app.run()  # the page sees no worker holding the turn
    (turn,) = store().turns(conv.id)
    assert turn.status == "error" and "restarted" in turn.error
    assert "Which port does the VPN use?" in texts(app) and any("restarted" in w.value for w in app.warning)


def test_feedback_is_stored_with_the_answer_and_can_be_changed(indexed: AppTest) -> None:
    app = ask(indexed, "Which port does the VPN use?")
    (conv,) = store().conversations("default")
    (turn,) = store().turns(conv.id)
    app.button(key=f"fb-wrong-{turn.id}").click().run()
    app.button(key=f"fb-helpful-{turn.id}").click().run()
    assert not app.exception
    (fb,) = store().feedback(kb="default")
    assert fb.rating == "helpful" and fb.answer.question == "Which port does the VPN use?"
    assert "1194" in fb.answer.text and fb.answer.sources
    assert any("marked this answer helpful" in c.value for c in app.caption)


def test_a_citation_opens_the_pdf_page_and_the_text_passage(indexed: AppTest, isolated_data_dir: Path) -> None:
    app = ask(indexed, "How often is the diesel generator tested?")
    app.toggle(key="ev-t1-1").set_value(True).run()
    assert not app.exception
    captions = [c.value for c in app.caption]
    assert any("page 2 of 3 · cited passage highlighted" in c for c in captions), captions
    app.button(key="evnext-t1-1").click().run()
    assert any("page 3 of 3" in c.value for c in app.caption)  # the neighbouring page, one click away
    assert app.get("imgs") or app.get("image")

    app = ask(app, "Which port does the VPN use?")
    app.toggle(key="ev-t2-1").set_value(True).run()
    assert any("Operations handbook › Network" in c.value for c in app.caption)
    assert any(re.search(r":orange-background\[[^\]]*port 1194", m.value) for m in app.markdown)

    pdf = isolated_data_dir / "uploads" / "default" / "facilities.pdf"
    pdf.write_bytes(b"%PDF-1.4 truncated by a failed copy")  # a page that cannot be rendered any more
    app.run()
    assert any("facilities.pdf cannot be opened to render it" in w.value for w in app.warning)
    assert not app.exception

    (isolated_data_dir / "uploads" / "default" / "ops.md").unlink()  # deleted from disk after indexing
    app.run()
    assert any("ops.md is no longer at" in w.value for w in app.warning)


def test_a_citation_to_a_removed_document_says_so(indexed: AppTest) -> None:
    app = ask(indexed, "How often is the diesel generator tested?")
    goto(app, "Knowledge bases")
    app.selectbox(key="remove-target").set_value(next(o for o in app.selectbox(key="remove-target").options
                                                      if o.endswith("facilities.pdf")))
    app.button(key="remove-doc").click().run()
    goto(app, "Chat")
    app.toggle(key="ev-t1-1").set_value(True).run()
    assert not app.exception
    assert any("facilities.pdf was removed from knowledge base 'default'" in w.value for w in app.warning)
    assert any("fourteen days" in m.value for m in app.markdown)  # the answer and its passage stay


def test_knowledge_base_page_shows_failures_last_run_and_model(app: AppTest) -> None:
    upload_and_index(app, [("empty.txt", b"   ", "text/plain"), ("ok.txt", b"Some text.", "text/plain")])
    fresh = goto(new_session(), "Knowledge bases")  # what a reload shows, read back from app.sqlite
    assert any("last indexed" in c.value and "1 documents" in c.value for c in fresh.caption)
    assert any("Failed in the last indexing run · 1" in e.label for e in fresh.expander)
    assert "empty.txt" in str(fresh.dataframe[0].value)
    assert any("embedder hash" in c.value for c in fresh.caption)
    goto(fresh, "Chat")
    assert any("context budget" in c.value and "echo" in c.value for c in fresh.caption)


def test_indexing_progress_is_still_shown_after_a_reload(app: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_TEST_EMBED_DELAY", "0.3")
    goto(app, "Knowledge bases")
    app.file_uploader(key="uploads").set_value([(f"f{i}.txt", f"text {i}".encode(), "text/plain")
                                                for i in range(20)]).run()
    app.button(key="index").click().run()
    fresh = goto(new_session(), "Knowledge bases")
    assert any("indexing" in str(p.proto) for p in fresh.get("progress")), "no progress after a reload"
    monkeypatch.setenv("KB_TEST_EMBED_DELAY", "0")
