"""One PDF page rendered as an image (pypdfium2), with the cited span's text boxes painted over it.

Only the asked page is loaded and drawn (pdfium reads pages lazily, so a 2,000-page file costs one
page), the result is cached per file version, page and span, and pdfium is called under one lock:
it is not thread-safe and Streamlit serves every browser session from its own thread.
"""

from __future__ import annotations

import functools
import io
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ..errors import KBError

_PDFIUM = threading.Lock()
WIDTH_PX = 1000  # rendered page width; scale is clamped so an odd page size cannot blow up memory
HIGHLIGHT = (255, 200, 0, 90)  # translucent amber
MIN_FRAGMENT = 6  # shortest piece of a span worth highlighting on its own when the whole is not found


class RenderError(KBError):
    """The page could not be rendered; the message says which and what to do."""


@dataclass(frozen=True)
class RenderedPage:
    png: bytes
    page: int  # 1-based
    pages: int  # pages in the file
    highlighted: int  # boxes drawn: 0 means the span was not found on the rendered page


def _normalise(ch: str) -> str:
    return unicodedata.normalize("NFKC", ch).casefold()


def _keyed(chars: list[tuple[int, str]]) -> tuple[str, list[int]]:
    """Characters without whitespace, normalised, with the index each came from."""
    text, index = [], []
    for i, ch in chars:
        for n in _normalise(ch):
            if not n.isspace() and n != "\x00":
                text.append(n)
                index.append(i)
    return "".join(text), index


def find_spans(page_chars: list[str], quote: str) -> list[tuple[int, int]]:
    """Character ranges ``[a, b)`` of the page that hold ``quote``, ignoring whitespace and width/case.

    pypdf (which indexed the text) and pdfium (which draws the page) break lines and space words
    differently, so the match ignores whitespace. When the whole quote is not there (a hyphenated
    word, a ligature), its lines and sentences are looked up one by one.
    """
    hay, where = _keyed(list(enumerate(page_chars)))
    spans = []
    pieces = [quote] if _keyed(list(enumerate(quote)))[0] in hay else _fragments(quote)
    for piece in pieces:
        needle = _keyed(list(enumerate(piece)))[0]
        if len(needle) < (1 if piece is quote else MIN_FRAGMENT):
            continue
        at = hay.find(needle)
        if at >= 0:
            spans.append((where[at], where[at + len(needle) - 1] + 1))
    return spans


def _fragments(quote: str) -> list[str]:
    import re

    return [p for p in re.split(r"[\n。！？!?;；]|(?<=[.,，、])\s", quote) if p.strip()]


def _merge_boxes(boxes: list[tuple[float, float, float, float]]) -> list[tuple[float, float, float, float]]:
    """Character boxes (left, bottom, right, top) joined into one box per line."""
    lines: list[list[float]] = []
    for left, bottom, right, top in boxes:
        if right <= left or top <= bottom:
            continue
        for line in lines:
            overlap = min(top, line[3]) - max(bottom, line[1])
            if overlap > 0.5 * min(top - bottom, line[3] - line[1]) and left - line[2] < 3 * (top - bottom):
                line[0], line[1] = min(line[0], left), min(line[1], bottom)
                line[2], line[3] = max(line[2], right), max(line[3], top)
                break
        else:
            lines.append([left, bottom, right, top])
    return [(a, b, c, d) for a, b, c, d in lines]


def page_count(path: Path) -> int:
    """Pages in the PDF (reads the page tree only)."""
    stat = path.stat()
    return _page_count(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _page_count(path: str, _mtime: int, _size: int) -> int:
    import pypdfium2 as pdfium

    with _PDFIUM:
        try:
            doc = pdfium.PdfDocument(path)
        except Exception as exc:  # noqa: BLE001 - pdfium's errors for unreadable files vary
            raise RenderError(f"{Path(path).name} cannot be opened to render it ({exc}); "
                              "re-save or re-export it and index it again") from None
        try:
            return len(doc)
        finally:
            doc.close()


def render_page(path: Path, page: int, quote: str = "") -> RenderedPage:
    """Page ``page`` (1-based) of the PDF as PNG bytes, ``quote`` highlighted where found."""
    stat = path.stat()
    return _render(str(path), stat.st_mtime_ns, stat.st_size, page, quote)


@functools.lru_cache(maxsize=24)  # ~24 PNGs of a few hundred kB each
def _render(path: str, _mtime: int, _size: int, page: int, quote: str) -> RenderedPage:
    import pypdfium2 as pdfium
    from PIL import Image, ImageDraw

    name = Path(path).name
    with _PDFIUM:
        try:
            doc = pdfium.PdfDocument(path)
        except Exception as exc:  # noqa: BLE001
            raise RenderError(f"{name} cannot be opened to render it ({exc}); "
                              "re-save or re-export it and index it again") from None
        try:
            pages = len(doc)
            if not 1 <= page <= pages:
                raise RenderError(f"{name} has {pages} pages, not a page {page}: the file changed since it "
                                  "was indexed; index it again")
            try:
                pdf_page = doc[page - 1]
                width, height = pdf_page.get_size()
                scale = min(3.0, max(0.5, WIDTH_PX / max(width, 1.0)))
                image = pdf_page.render(scale=scale).to_pil().convert("RGBA")
                boxes = []
                if quote.strip():
                    textpage = pdf_page.get_textpage()
                    chars = [textpage.get_text_range(i, 1) for i in range(textpage.count_chars())]
                    for a, b in find_spans(chars, quote):
                        boxes += _merge_boxes([textpage.get_charbox(i, loose=True) for i in range(a, b)])
            except RenderError:
                raise
            except Exception as exc:  # noqa: BLE001 - a broken page must not take the app down
                raise RenderError(f"page {page} of {name} could not be rendered ({type(exc).__name__}: {exc}); "
                                  "the indexed text of the passage is shown instead") from None
        finally:
            doc.close()
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for left, bottom, right, top in boxes:  # PDF points, origin bottom-left -> pixels, origin top-left
        draw.rectangle([left * scale - 2, (height - top) * scale - 2, right * scale + 2,
                        (height - bottom) * scale + 2], fill=HIGHLIGHT)
    out = io.BytesIO()
    Image.alpha_composite(image, overlay).convert("RGB").save(out, format="PNG", optimize=False)
    return RenderedPage(out.getvalue(), page, pages, len(boxes))
