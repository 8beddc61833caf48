"""Text from images and scanned PDF pages through RapidOCR (PP-OCR models shipped in its wheel, no download).

Reading order is rebuilt from the boxes (top to bottom, then left to right within a line), lines the
recogniser is unsure of are dropped, and a page put in sideways or upside down (most text boxes taller
than wide, or most lines classified as turned 180 degrees) is read again turned upright.
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


@dataclass(frozen=True)
class _Read:
    lines: list[OcrLine]
    dropped: int
    found: int  # text boxes detected
    tall: float  # share of boxes taller than wide: the page is on its side
    flipped: float  # share of boxes the angle classifier turned 180 degrees: the page is upside down

    @property
    def upright(self) -> bool:
        return self.tall <= 0.5 and self.flipped <= 0.5

    @property
    def weight(self) -> float:
        return sum(len(line.text) * line.score for line in self.lines)


class _ClsRecorder:
    """Wraps RapidOCR's angle classifier to keep its verdicts (the result does not carry them)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.last: list[Any] = []

    def __call__(self, images: Any) -> Any:
        out = self.inner(images)
        self.last = list(out[1] or [])
        return out


def _run(engine: Any, image: Any, min_score: float) -> _Read:
    import numpy as np

    if not isinstance(engine.text_cls, _ClsRecorder):
        engine.text_cls = _ClsRecorder(engine.text_cls)
    engine.text_cls.last = []
    array = np.asarray(image.convert("RGB"))[:, :, ::-1].copy()  # RapidOCR expects OpenCV's BGR
    result, _ = engine(array)
    kept, dropped, tall = [], 0, 0
    for box, text, score in result or []:
        xs = [float(p[0]) for p in box]
        ys = [float(p[1]) for p in box]
        tall += (max(ys) - min(ys)) > 1.5 * (max(xs) - min(xs))
        if float(score) < min_score or not str(text).strip():
            dropped += 1
            continue
        kept.append(OcrLine(str(text).strip(), float(score), (min(xs), min(ys), max(xs), max(ys))))
    found = len(result or [])
    verdicts = engine.text_cls.last
    flipped = sum(str(v[0]) == "180" for v in verdicts) / len(verdicts) if verdicts else 0.0
    return _Read(kept, dropped, found, tall / found if found else 0.0, flipped)


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
    best, rotated = _run(engine, image, min_score), 0
    if best.found and not (best.upright and best.lines):
        # on its side (boxes taller than wide), upside down (lines classified as turned) or unreadable:
        # read it turned, and keep the reading that is upright and says the most
        angles = (90, 270) if best.tall > 0.5 else (180,) if best.flipped > 0.5 else (90, 270, 180)
        for angle in angles:
            turned = _run(engine, image.rotate(angle, expand=True), min_score)
            if (turned.upright, turned.weight) > (best.upright, best.weight):
                best, rotated = turned, angle
    return OcrPage(tuple(reading_order(best.lines)), best.dropped, rotated)


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
