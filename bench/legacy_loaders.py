"""Frozen copy of ingest/loaders.py before issue 14 (PARSER_VERSION 1): the baseline bench/bench_documents.py
measures the structured parsers against. Not used by the product.


Parser per format (decided by trying unstructured 0.27.32 offline, see the report in the commit):

    suffix            parser                       why
    .txt              ingest.encoding              exact text; offsets match the file
    .md .markdown     ingest.encoding (raw)        keep markdown source so offsets match the file
    .pdf              pypdf                        unstructured's pdf needs layout models / OCR downloads
    .docx             python-docx                  unstructured downloads spaCy en_core_web_sm
    .pptx             python-pptx                  unstructured downloads spaCy en_core_web_sm
    .xlsx             openpyxl                     unstructured needs xlrd (absent) and pandas; slow
    .html .htm        BeautifulSoup + lxml         unstructured downloads spaCy en_core_web_sm
    .eml              email (stdlib) (+ bs4 html)  unstructured downloads spaCy en_core_web_sm
    .csv              csv (stdlib)                 unstructured works offline but flattens rows,
                                                   losing the "header: value" pairing we want

unstructured's text classification (is_possible_narrative_text / title) calls
unstructured.nlp.tokenize, which pip-installs en_core_web_sm from GitHub at run time when it is
missing: unacceptable for an offline, private tool, so no loader uses unstructured.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.util import find_spec

from ingest.encoding import STREAM_BLOCK_BYTES, decode_bytes, iter_text_blocks, read_bytes, read_text
from ingest.errors import IngestError, missing_package
from ingest.types import Document

LoaderFunction = Callable[[str, int | None], list[Document]]


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
            "beautifulsoup4": "bs4", "lxml": "lxml", "charset-normalizer": "charset_normalizer"}  # fmt: skip


def _need(path: str, package: str):  # noqa: ANN202 - returns a module
    module = _MODULES[package]
    try:
        return __import__(module)
    except ImportError as exc:
        raise missing_package(path, module, package) from exc


def _doc(path: str, text: str, page: int | None = None, **metadata: str) -> Document:
    return Document(source=path, text=text, page=page, metadata={"format": metadata.pop("fmt"), **metadata})


def load_text(path: str, max_bytes: int | None) -> list[Document]:
    """Plain text and markdown, kept verbatim (only newlines normalised)."""
    fmt = "markdown" if path.lower().endswith((".md", ".markdown")) else "text"
    return [_doc(path, read_text(path, max_bytes=max_bytes), fmt=fmt)]


def load_pdf(path: str, max_bytes: int | None) -> list[Document]:
    """One Document per PDF page that has text; pages are 1-based."""
    pypdf = _need(path, "pypdf")
    data = read_bytes(path, max_bytes=max_bytes)
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise IngestError(
                path, "the PDF is encrypted", "remove the password (re-save it) and index it again"
            )
        pages = [page.extract_text() or "" for page in reader.pages]
    except IngestError:
        raise
    except Exception as exc:
        raise IngestError(
            path,
            f"the PDF is corrupt or encrypted (pypdf: {exc})",
            "re-save or re-export the file and index it again",
        ) from exc
    docs = []
    for number, text in enumerate(pages, start=1):
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if text.strip():
            docs.append(_doc(path, text, page=number, fmt="pdf"))
    if not docs:
        raise IngestError(
            path,
            "the PDF has no extractable text; it is probably scanned images",
            "run OCR on it (e.g. ocrmypdf) and index the result",
        )
    return docs


def load_docx(path: str, max_bytes: int | None) -> list[Document]:
    """Paragraphs and table cells in document order; table rows become tab-separated lines."""
    docx = _need(path, "python-docx")
    data = read_bytes(path, max_bytes=max_bytes)
    document = docx.Document(io.BytesIO(data))
    blocks = []
    for item in document.iter_inner_content():
        if hasattr(item, "rows"):  # a table: one block, one line per row
            rows = ("\t".join(_unique(cell.text.strip() for cell in row.cells)) for row in item.rows)
            blocks.append("\n".join(r for r in rows if r.strip()))
        else:
            blocks.append(item.text)
    return [_doc(path, "\n\n".join(b for b in blocks if b.strip()), fmt="docx")]


def load_pptx(path: str, max_bytes: int | None) -> list[Document]:
    """Text of every shape, one blank-line separated block per slide, speaker notes included."""
    pptx = _need(path, "python-pptx")
    deck = pptx.Presentation(io.BytesIO(read_bytes(path, max_bytes=max_bytes)))
    slides = []
    for slide in deck.slides:
        parts = [shape.text_frame.text for shape in slide.shapes if shape.has_text_frame]
        for shape in slide.shapes:
            if shape.has_table:
                parts += ["\t".join(c.text for c in row.cells) for row in shape.table.rows]
        if slide.has_notes_slide:
            parts.append(slide.notes_slide.notes_text_frame.text)
        slides.append("\n".join(p for p in parts if p.strip()))
    return [_doc(path, "\n\n".join(s for s in slides if s.strip()), fmt="pptx")]


def load_xlsx(path: str, max_bytes: int | None) -> list[Document]:
    """Each sheet's rows rendered like CSV rows: ``header: value; header: value``."""
    openpyxl = _need(path, "openpyxl")
    book = openpyxl.load_workbook(
        io.BytesIO(read_bytes(path, max_bytes=max_bytes)), read_only=True, data_only=True
    )
    sheets = []
    for sheet in book.worksheets:
        rows = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
        body = _render_rows([r for r in rows if any(c.strip() for c in r)])
        if body:
            sheets.append(f"# {sheet.title}\n{body}")
    book.close()
    return [_doc(path, "\n\n".join(sheets), fmt="xlsx")]


def load_csv(path: str, max_bytes: int | None) -> list[Document]:
    """Each row as ``header: value; header: value`` on its own line (encoding detected)."""
    text, encoding = decode_bytes(read_bytes(path, max_bytes=max_bytes), path=path)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = [row for row in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in row)]
    return [_doc(path, _render_rows(rows), fmt="csv", encoding=encoding)]


def _render_rows(rows: list[list[str]]) -> str:
    if not rows:
        return ""
    header, *body = rows
    header = [h.strip() or f"column {i + 1}" for i, h in enumerate(header)]
    lines = []
    for row in body or [header]:
        pairs = [f"{h}: {v.strip()}" for h, v in zip(header, row, strict=False) if v.strip()]
        pairs += [v.strip() for v in row[len(header) :] if v.strip()]
        lines.append("; ".join(pairs))
    return "\n".join(lines)


def load_html(path: str, max_bytes: int | None) -> list[Document]:
    """Visible text of an HTML page (no script, style or head metadata)."""
    data = read_bytes(path, max_bytes=max_bytes)
    title, text = html_to_text(path, data)
    if title:
        return [_doc(path, text, fmt="html", title=title)]
    return [_doc(path, text, fmt="html")]


def html_to_text(path: str, markup: bytes | str) -> tuple[str, str]:
    """``(title, visible text)`` of an HTML document; blocks become lines."""
    bs4 = _need(path, "beautifulsoup4")
    _need(path, "lxml")
    soup = bs4.BeautifulSoup(markup, "lxml")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(["script", "style", "noscript", "template", "head", "svg"]):
        tag.decompose()
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    return title, "\n".join(line for line in lines if line)


def load_eml(path: str, max_bytes: int | None) -> list[Document]:
    """Headers (From, To, Date, Subject) and the plain-text body, else the HTML body's text."""
    import email
    from email import policy

    message = email.message_from_bytes(read_bytes(path, max_bytes=max_bytes), policy=policy.default)
    header = "\n".join(f"{k}: {message[k]}" for k in ("From", "To", "Date", "Subject") if message[k])
    body_part = message.get_body(preferencelist=("plain", "html"))
    body = ""
    if body_part is not None:
        body = body_part.get_content()
        if body_part.get_content_type() == "text/html":
            body = html_to_text(path, body)[1]
    text = f"{header}\n\n{body.strip()}".replace("\r\n", "\n")
    return [_doc(path, text, fmt="eml", subject=str(message["Subject"] or ""))]


def _unique(cells) -> list[str]:  # noqa: ANN001 - merged cells repeat their text in python-docx
    out: list[str] = []
    for cell in cells:
        if not out or cell != out[-1]:
            out.append(cell)
    return out


_SPECS = (
    LoaderSpec("text", (".txt",), load_text, ("charset-normalizer",), "plain text, encoding detected"),
    LoaderSpec(
        "markdown", (".md", ".markdown"), load_text, ("charset-normalizer",), "markdown source, verbatim"
    ),
    LoaderSpec("pdf", (".pdf",), load_pdf, ("pypdf",), "PDF text layer, one document per page"),
    LoaderSpec("docx", (".docx",), load_docx, ("python-docx",), "Word paragraphs and tables"),
    LoaderSpec("pptx", (".pptx",), load_pptx, ("python-pptx",), "PowerPoint slide text and notes"),
    LoaderSpec("xlsx", (".xlsx",), load_xlsx, ("openpyxl",), "Excel sheets as header: value rows"),
    LoaderSpec(
        "html", (".html", ".htm"), load_html, ("beautifulsoup4", "lxml"), "visible text of a web page"
    ),
    LoaderSpec("csv", (".csv",), load_csv, ("charset-normalizer",), "rows as header: value lines"),
    LoaderSpec("eml", (".eml",), load_eml, ("beautifulsoup4", "lxml"), "e-mail headers and body"),
)
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


def load_file(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> list[Document]:
    """Read one file into Documents with the loader registered for its suffix.

    ``max_bytes`` defaults to ``KB_MAX_FILE_MB`` from the environment, else 200 MB.
    Every failure is an IngestError naming the file and what to do.
    """
    path = os.fspath(path)
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
    try:
        docs = spec.function(path, max_bytes)
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
    return docs


STREAMABLE_SUFFIXES: tuple[str, ...] = (".txt", ".md", ".markdown")


def stream_text(
    path: str | os.PathLike[str], *, block_bytes: int = STREAM_BLOCK_BYTES
) -> Iterator[tuple[int, Document]]:
    """A large plain-text or markdown file as ``(offset, Document)`` blocks, never held whole.

    ``offset`` is where the block's text starts in the whole file's text: a chunk cut from the
    block at ``start`` sits at ``offset + start`` in the file. No size limit applies.
    """
    path = os.fspath(path)
    if os.path.splitext(path)[1].lower() not in STREAMABLE_SUFFIXES:
        raise IngestError(path, "only plain text and markdown files can be streamed", "use load_file")
    fmt = "markdown" if path.lower().endswith((".md", ".markdown")) else "text"
    for offset, text in iter_text_blocks(path, block_bytes=block_bytes):
        yield offset, _doc(path, text, fmt=fmt)
