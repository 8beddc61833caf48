"""PDFs (text layer per page, outline as heading paths, OCR for pages without text) and images (OCR).

A page with any text in its layer is taken as it is and never OCRed; only pages whose layer is empty
are rendered (pypdfium2) and read by RapidOCR, within the file's page and time limits.
"""

from __future__ import annotations

import io
from typing import Any

from ingest.encoding import read_bytes
from ingest.errors import IngestError
from ingest.limits import check_pages
from ingest.ocr import OcrBudget, ocr_image, open_image
from ingest.pdfwarnings import named_pdf_warnings
from ingest.structure import TextBuilder
from ingest.types import Document, LoadOptions, Section


def _outline_paths(reader: Any, pages: int) -> list[tuple[str, ...]]:
    """For each page, the outline (bookmark) path in force on it: the latest entry at each depth that
    starts on or before the page. Empty when the PDF has no outline."""
    starts: list[tuple[int, int, str]] = []  # (page index, depth, title) in outline order

    def walk(items: list[Any], depth: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, depth + 1)
                continue
            try:
                page = reader.get_destination_page_number(item)
            except Exception:
                continue
            title = " ".join(str(getattr(item, "title", "") or "").split())
            if title and page is not None and page >= 0:
                starts.append((page, depth, title))

    try:
        walk(reader.outline, 0)
    except Exception:
        return [() for _ in range(pages)]
    starts.sort(key=lambda s: s[0])  # stable: outline order kept within a page
    paths: list[tuple[str, ...]] = []
    current: list[str] = []
    i = 0
    for page in range(pages):
        while i < len(starts) and starts[i][0] <= page:
            _, depth, title = starts[i]
            current = [*current[:depth], title]
            i += 1
        paths.append(tuple(current))
    return paths


def load_pdf(path: str, options: LoadOptions) -> list[Document]:
    """One Document per page with text (its outline path as the heading); textless pages OCRed."""
    from ingest.loaders import need

    pypdf = need(path, "pypdf")
    data = read_bytes(path, max_bytes=options.max_bytes)
    _check_pdf_header(path, data)
    try:
        with named_pdf_warnings(path):
            reader = pypdf.PdfReader(io.BytesIO(data))
            if reader.is_encrypted:
                raise IngestError(path, "the PDF is encrypted", "remove the password (re-save it) and index it again")
            check_pages(path, len(reader.pages), options.limits)
            texts = [(page.extract_text() or "").replace("\r\n", "\n").replace("\r", "\n")
                     for page in reader.pages]
            outline = _outline_paths(reader, len(texts))
    except IngestError:
        raise
    except Exception as exc:
        raise IngestError(
            path, f"the PDF is corrupt or encrypted (pypdf: {exc})", "re-save or re-export the file and index it again"
        ) from exc
    blank = [n for n, text in enumerate(texts, start=1) if not text.strip()]
    if blank and options.ocr.enabled:
        texts = _ocr_pdf_pages(path, data, blank, texts, options)
    elif blank and len(blank) == len(texts):
        raise IngestError(
            path, "the PDF has no extractable text (scanned images) and OCR is turned off", "set KB_OCR=true"
        )
    docs = []
    scanned = TextBuilder()  # OCRed pages: numbered headings ("第三章 …") found line by line, across pages
    layered = TextBuilder()  # the same for text-layer pages of a PDF without an outline, text kept as is
    for number, text in enumerate(texts, start=1):
        headings = outline[number - 1]
        sections: tuple[Section, ...] = (Section(0, len(text), headings),) if headings else ()
        if not any(outline) and number not in blank:
            sections = layered.sections_of(text)
        if number in blank:
            if headings:
                scanned.reset(headings)
            scanned.lines(text)
            text, sections = scanned.take()
        if text.strip():
            metadata = {"format": "pdf", **({"ocr": "1"} if number in blank else {})}
            docs.append(Document(path, text, page=number, metadata=metadata, sections=sections))
    if not docs:
        raise IngestError(path, "no text was found in the PDF, not even by OCR", "check that the scan is legible")
    return docs


def _check_pdf_header(path: str, data: bytes) -> None:
    """A .pdf that is not a PDF at all (a saved error page, a renamed file) says what it really is."""
    if b"%PDF-" in data[:1024]:
        return
    head = data[:512].lstrip().lower()
    kind = "an HTML page" if head.startswith((b"<!doctype html", b"<html", b"<?xml")) or b"<html" in head else ""
    raise IngestError(
        path, f"the file is not a PDF{f' but {kind}' if kind else ''} (no %PDF header)",
        "save the real document (or rename the file to its actual type) and index it again",
    )


def _ocr_pdf_pages(path: str, data: bytes, blank: list[int], texts: list[str], options: LoadOptions) -> list[str]:
    import pypdfium2

    budget = OcrBudget(path, options.ocr, len(blank), options.progress)
    texts = list(texts)
    pdf = pypdfium2.PdfDocument(data)
    try:
        for number in blank:
            budget.page(number)
            bitmap = pdf[number - 1].render(scale=options.ocr.dpi / 72)
            image = bitmap.to_pil()
            texts[number - 1] = ocr_image(image, min_score=options.ocr.min_score, path=path).text
            bitmap.close()
    finally:
        pdf.close()
    return texts


def load_image(path: str, options: LoadOptions) -> list[Document]:
    """OCR of an image; each frame of a multi-page TIFF is a page."""
    from PIL import ImageSequence

    image = open_image(path)
    frames = getattr(image, "n_frames", 1)
    budget = OcrBudget(path, options.ocr, frames, options.progress)
    docs = []
    builder = TextBuilder()
    for number, frame in enumerate(ImageSequence.Iterator(image), start=1):
        budget.page(number)
        page = ocr_image(frame.copy(), min_score=options.ocr.min_score, path=path)
        builder.lines(page.text)
        text, sections = builder.take()
        if text.strip():
            metadata = {"format": "image", "ocr": "1", **({"rotated": str(page.rotated)} if page.rotated else {})}
            number_or_none = number if frames > 1 else None
            docs.append(Document(path, text, page=number_or_none, metadata=metadata, sections=sections))
    if not docs:
        raise IngestError(path, "OCR found no text in the image", "leave it out, or index a clearer scan")
    return docs
