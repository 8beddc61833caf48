"""Text from images and scanned PDF pages through RapidOCR (PP-OCR models shipped in its wheel, no download).

Reading order is rebuilt from the boxes (top to bottom, then left to right within a line), lines the
recogniser is unsure of are dropped, and a page that reads as nothing confident but does contain text
boxes is tried again turned by 90, 270 and 180 degrees (a scanned page put in sideways).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ingest.errors import IngestError, missing_package
from ingest.types import OcrOptions

OCR_PACKAGE = "rapidocr-onnxruntime==1.4.4"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class OcrLine:
    text: str
    score: float
    box: tuple[float, float, float, float]  # x0, y0, x1, y1


@dataclass(frozen=True)
class OcrPage:
    """One page's confident lines in reading order; ``rotated`` is the turn (degrees) that read it."""

    lines: tuple[OcrLine, ...]
    dropped: int = 0
    rotated: int = 0

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


@functools.cache
def _engine() -> Any:
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:
        raise ImportError("rapidocr_onnxruntime") from exc
    return RapidOCR()


def engine_for(path: str) -> Any:
    """The shared RapidOCR engine; a missing package is an IngestError naming it."""
    try:
        return _engine()
    except ImportError as exc:
        raise missing_package(path, "rapidocr_onnxruntime", OCR_PACKAGE) from exc


def _run(engine: Any, image: Any, min_score: float) -> tuple[list[OcrLine], int, int]:
    """``(kept lines, dropped lines, boxes found)`` for one PIL image."""
    import numpy as np

    array = np.asarray(image.convert("RGB"))[:, :, ::-1].copy()  # RapidOCR expects OpenCV's BGR
    result, _ = engine(array)
    kept, dropped = [], 0
    for box, text, score in result or []:
        xs = [float(p[0]) for p in box]
        ys = [float(p[1]) for p in box]
        if float(score) < min_score or not str(text).strip():
            dropped += 1
            continue
        kept.append(OcrLine(str(text).strip(), float(score), (min(xs), min(ys), max(xs), max(ys))))
    return kept, dropped, len(result or [])


def reading_order(lines: list[OcrLine]) -> list[OcrLine]:
    """Boxes grouped into text lines (vertical centres within half a line height), each read left to right;
    boxes of one line are joined (with a space between Latin words)."""
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda b: (b.box[1] + b.box[3]) / 2):
        centre = (line.box[1] + line.box[3]) / 2
        if rows:
            last = rows[-1]
            last_centre = sum((b.box[1] + b.box[3]) / 2 for b in last) / len(last)
            height = max(b.box[3] - b.box[1] for b in last)
            if abs(centre - last_centre) < height / 2:
                last.append(line)
                continue
        rows.append([line])
    out = []
    for row in rows:
        row.sort(key=lambda b: b.box[0])
        text = row[0].text
        for b in row[1:]:
            text += (" " if text[-1].isascii() and b.text[0].isascii() else "") + b.text
        box = (min(b.box[0] for b in row), min(b.box[1] for b in row),
               max(b.box[2] for b in row), max(b.box[3] for b in row))  # fmt: skip
        out.append(OcrLine(text, min(b.score for b in row), box))
    return out


def ocr_image(image: Any, *, min_score: float = 0.5, path: str = "") -> OcrPage:
    """OCR one image (a PIL image or a file path); an empty page gives no lines, not an error."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        image = open_image(str(image))
    engine = engine_for(path or "image")
    lines, dropped, found = _run(engine, image, min_score)
    rotated = 0
    if not lines and found:  # text is there but unreadable upright: the page may be turned
        for angle in (90, 270, 180):
            turned, turned_dropped, _ = _run(engine, image.rotate(angle, expand=True), min_score)
            if sum(len(t.text) for t in turned) > sum(len(t.text) for t in lines):
                lines, dropped, rotated = turned, turned_dropped, angle
    return OcrPage(tuple(reading_order(lines)), dropped, rotated)


def open_image(path: str) -> Any:
    """A PIL image of ``path``, fully decoded now so a corrupt file fails here with a clear message."""
    from PIL import Image

    try:
        image = Image.open(path)
        image.load()
    except Exception as exc:
        raise IngestError(
            path, f"the image cannot be decoded ({type(exc).__name__}: {exc})", "re-save or re-export it"
        ) from exc
    return image


ProgressFn = Callable[[str], None]


class OcrBudget:
    """Counts pages and seconds spent on one file's OCR, refusing the file once past either limit."""

    def __init__(self, path: str, options: OcrOptions, pages: int, progress: ProgressFn | None = None) -> None:
        self.path, self.options, self.pages, self.progress = path, options, pages, progress
        if not options.enabled:
            raise IngestError(path, "it needs OCR (no text layer) and OCR is turned off", "set KB_OCR=true")
        if pages > options.max_pages:
            raise IngestError(
                path,
                f"{pages} pages need OCR, more than the {options.max_pages} allowed per file",
                "raise KB_OCR_MAX_PAGES or split the file",
            )
        self.started = time.monotonic()
        self.done = 0

    def page(self, number: int) -> None:
        """Called before OCRing page ``number``: reports progress and enforces the time limit."""
        elapsed = time.monotonic() - self.started
        if elapsed > self.options.max_seconds:
            raise IngestError(
                self.path,
                f"OCR took over {self.options.max_seconds:g} s after {self.done} of {self.pages} pages",
                "raise KB_OCR_MAX_SECONDS or split the file",
            )
        self.done += 1
        if self.progress:
            self.progress(f"OCR page {number} ({self.done}/{self.pages})")
