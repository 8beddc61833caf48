"""The Streamlit door through streamlit's AppTest, on the stand-in embedder and generator."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kb_assistant.types import Answer, Citation, Source
from kb_assistant.web.render import answer_markdown, escape_markdown, passage_markdown
from kb_assistant.web.store import AppStore

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")


@pytest.fixture
def app() -> AppTest:
    import streamlit as st

    st.cache_resource.clear()  # settings and knowledge bases are cached per process, not per test
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    return at


def goto(app: AppTest, page: str) -> AppTest:
    app.sidebar.radio(key="page").set_value(page).run()
    assert not app.exception
    return app


def upload_and_index(app: AppTest, files: list[tuple[str, bytes, str]]) -> AppTest:
    goto(app, "Knowledge bases")
    app.file_uploader(key="uploads").set_value(files).run()
    app.button(key="index").click().run()
    for _ in range(100):  # the job runs in a thread; the page polls it
        if app.success or app.warning:
            break
        time.sleep(0.1)
        app.run()
    assert not app.exception
    return app


def store() -> AppStore:
    return AppStore(Path(os.environ["KB_DATA_DIR"]) / "app.sqlite")


def settle(app: AppTest) -> AppTest:
    """Answers are written by a worker thread: wait until no turn is pending, then redraw."""
    for _ in range(600):
        if not any(t.pending for c in store().conversations(app.session_state["kb"]) for t in store().turns(c.id)):
            break
        time.sleep(0.05)
    app.run()
    assert not app.exception
    return app


def ask(app: AppTest, question: str) -> AppTest:
    app.chat_input[0].set_value(question).run()
    assert not app.exception
    return settle(app)


def test_upload_index_and_chat_with_linked_sources(app: AppTest, isolated_data_dir: Path) -> None:
    upload_and_index(app, [
        ("policy.txt", "年假政策：正式员工每年享有十五天带薪年假。".encode(), "text/plain"),
        ("../../evil.txt", b"<script>alert(1)</script> [click](http://evil.example) VPN port 1194.", "text/plain"),
    ])
    assert any("2 added" in s.value for s in app.success)
    assert not (isolated_data_dir.parent / "evil.txt").exists()
    assert (isolated_data_dir / "uploads" / "default" / "evil.txt").exists()
    assert "policy.txt" in str(app.dataframe[-1].value)

    goto(app, "Chat")
    ask(app, "年假有几天？")
    answers = [m.value for m in app.markdown]
    assert any("十五天" in a and re.search(r"\(#t1-1\)", a) for a in answers), answers  # [1] links to source 1
    assert any('id="t1-1"' in m.value for m in app.markdown)  # the anchor it links to

    ask(app, "VPN port 1194?")
    sources = [m.value for m in app.markdown]
    assert any("\\<script\\>" in m for m in sources)  # document text is escaped, never rendered
    assert not any("<script>" in m and "\\<script" not in m for m in sources)


def test_sources_show_their_heading_path(app: AppTest) -> None:
    upload_and_index(app, [("handbook.md", "# 员工手册\n\n## 年假\n\n正式员工每年享有十五天带薪年假。\n".encode(),
                            "text/markdown")])
    goto(app, "Chat")
    ask(app, "年假有几天？")
    assert any("员工手册 \\> 年假" in m.value for m in app.markdown), [m.value for m in app.markdown]


def test_not_found_and_empty_states(app: AppTest) -> None:
    goto(app, "Chat")
    ask(app, "anything?")
    assert any("is empty" in w.value for w in app.warning)
    upload_and_index(app, [("a.txt", "食堂开放时间为每天上午七点。".encode(), "text/plain")])
    goto(app, "Chat")
    app.sidebar.slider[1].set_value(1.0).run()  # relevance threshold at its maximum
    ask(app, "量子计算机的原理是什么？")
    assert any("没有找到" in i.value for i in app.info)
    assert not any("Sources" in e.label for e in app.expander)


def test_create_remove_and_delete_knowledge_base(app: AppTest, isolated_data_dir: Path) -> None:
    goto(app, "Knowledge bases")
    app.text_input(key="new-kb").set_value("手册")
    app.button(key="create-kb").click().run()
    assert app.session_state["kb"] == "手册"
    upload_and_index(app, [("x.txt", b"some text to index", "text/plain")])
    app.button(key="remove-doc").click().run()
    assert not app.exception
    assert any("No documents yet" in i.value for i in app.info)
    app.checkbox(key="confirm-delete").check().run()
    app.button(key="delete-kb").click().run()
    assert not app.exception
    assert not (isolated_data_dir / "kbs" / "手册").exists()


def test_create_a_knowledge_base_on_milvus_lite(app: AppTest, isolated_data_dir: Path) -> None:
    pytest.importorskip("milvus_lite", reason="pip install pymilvus milvus-lite")
    goto(app, "Knowledge bases")
    app.text_input(key="new-kb").set_value("lite")
    app.selectbox(key="new-kb-store").set_value("milvus")
    app.button(key="create-kb").click().run()
    assert not app.exception and app.session_state["kb"] == "lite"
    assert '"backend": "milvus"' in (isolated_data_dir / "kbs" / "lite" / "manifest.json").read_text()
    upload_and_index(app, [("vpn.md", b"The VPN server uses port 1194.", "text/markdown")])
    goto(app, "Chat")
    app.sidebar.selectbox[2].set_value("milvus").run()  # Retrieval > Keyword index: Milvus's own BM25
    ask(app, "Which port does the VPN use?")
    assert any("vpn\\.md" in m.value for m in app.markdown), [m.value for m in app.markdown]


def test_rendering_is_literal() -> None:
    assert escape_markdown("<b>[a](b)</b> :red[x]") == "\\<b\\>\\[a\\]\\(b\\)\\</b\\> \\:red\\[x\\]"
    src = Source(1, "第一句。第二句是答案。第三句。", "/d/a.txt", 100, 115, 0.9)
    answer = Answer("q", "答案在这里[1]。无效[7]", (src,), (Citation(1, src),), 10)
    md = answer_markdown(answer, "a0")
    assert "[\\[1\\]](#a0-1)" in md and "\\[7\\]" in md and "(#a0-7)" not in md
    highlighted = passage_markdown(Citation(1, src, quote_start=104, quote_end=111))
    assert highlighted == "第一句。:orange-background[第二句是答案。]第三句。"


def test_model_sidebar_shows_backend_specific_fields(app: AppTest) -> None:
    app.sidebar.selectbox(key="backend").set_value("transformers").run()
    assert not app.exception
    assert app.sidebar.text_input(key="adapter") is not None
    app.sidebar.selectbox(key="backend").set_value("openai").run()
    assert app.sidebar.text_input(key="base-url") is not None


def test_a_bad_setting_is_one_message_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit as st

    monkeypatch.setenv("KB_TOP_K", "-1")
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "invalid settings: setting top_k (KB_TOP_K) = '-1': Input should be greater than or equal to 1"]
