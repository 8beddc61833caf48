"""The Streamlit door through streamlit's AppTest, on the stand-in embedder and generator."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")


@pytest.fixture
def app() -> AppTest:
    import streamlit as st

    st.cache_resource.clear()  # settings and knowledge bases are cached per process, not per test
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    return at


def test_upload_index_and_chat_with_sources(app: AppTest, isolated_data_dir: Path) -> None:
    app.file_uploader[0].set_value([
        ("policy.txt", "年假政策：正式员工每年享有十五天带薪年假。".encode(), "text/plain"),
        ("../../evil.txt", b"<script>alert(1)</script> The VPN port is 1194.", "text/plain"),
    ]).run()
    app.button(key="index").click().run()
    assert not app.exception
    assert any("2 added" in s.value for s in app.success)
    assert not (isolated_data_dir.parent / "evil.txt").exists()
    assert (isolated_data_dir / "uploads" / "default" / "evil.txt").exists()

    app.chat_input[0].set_value("年假有几天？").run()
    assert not app.exception
    answers = [m.value for m in app.markdown]
    assert any("十五天" in a and "[1]" in a for a in answers), answers
    texts = [t.value for t in app.text]
    assert any("十五天带薪年假" in t for t in texts)  # the source passage, shown as plain text


def test_empty_knowledge_base_warns_instead_of_answering(app: AppTest) -> None:
    app.chat_input[0].set_value("anything?").run()
    assert not app.exception
    assert any("is empty" in w.value for w in app.warning)
