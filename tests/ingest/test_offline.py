"""unstructured and RapidOCR parse with every socket blocked: no model download, no telemetry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("unstructured")
pytest.importorskip("rapidocr_onnxruntime")

from tests.ingest.docgen import HANDBOOK, render_text_image, write_docx, write_html  # noqa: E402

# Runs in a fresh interpreter so that nothing was imported (or downloaded) before sockets were blocked.
_SCRIPT = r"""
import json, socket, sys
attempts = []
def refuse(self, address, *args, **kwargs):
    attempts.append(repr(address))
    raise OSError("network blocked by test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = lambda address, *a, **k: refuse(None, address)
real_getaddrinfo = socket.getaddrinfo
def lookup(host, *args, **kwargs):
    attempts.append("dns:" + str(host))
    raise socket.gaierror("network blocked by test")
socket.getaddrinfo = lookup

from ingest.elements import configure_unstructured, partition
from ingest.ocr import ocr_image

out = {}
for path, fmt in json.loads(sys.argv[1]):
    elements = partition(path, fmt)
    out[path.rsplit("/", 1)[-1]] = [[type(e).__name__, e.text] for e in elements]
out["spacy_loaded"] = configure_unstructured()._get_nlp.cache_info().currsize
out["ocr"] = [line.text for line in ocr_image(sys.argv[2]).lines]
out["attempts"] = attempts
print(json.dumps(out, ensure_ascii=False))
"""


def test_unstructured_and_ocr_without_network(tmp_path: Path) -> None:
    files = [
        (str(write_docx(tmp_path / "a.docx", HANDBOOK)), "docx"),
        (str(write_html(tmp_path / "a.html", HANDBOOK)), "html"),
    ]
    # an English sentence makes unstructured run its spaCy classifier (Chinese text skips it)
    (tmp_path / "en.html").write_text("<p>Employees who travel must book economy tickets in advance.</p>")
    files.append((str(tmp_path / "en.html"), "html"))
    image = tmp_path / "page.png"
    render_text_image(["年假每年五天", "病假需要医院证明"]).save(image)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    env.pop("SCARF_NO_ANALYTICS", None)
    env.pop("DO_NOT_TRACK", None)
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, json.dumps(files), str(image)],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["attempts"] == []
    assert out["spacy_loaded"] == 1  # the classifier really ran, on the bundled model
    for name in ("a.docx", "a.html"):
        kinds = [k for k, _ in out[name]]
        assert "Title" in kinds and "Table" in kinds, out[name]
        assert any("年假" in text for _, text in out[name])
    assert out["en.html"] == [["NarrativeText", "Employees who travel must book economy tickets in advance."]]
    assert out["ocr"] == ["年假每年五天", "病假需要医院证明"]
