"""Small PDFs with a title and several lines a page (Helvetica, exact xref offsets), for the evidence view."""

from __future__ import annotations

from tests.ingest.pdfgen import _escape, pdf_from_streams


def pdf_with_lines(pages: list[tuple[str, list[str]]]) -> bytes:
    """One page per ``(title, lines)``: the title in 16 pt, the lines in 11 pt below it (Latin-1 text)."""
    streams = []
    for title, lines in pages:
        body = " T* ".join(f"({_escape(line)}) Tj" for line in lines)
        streams.append((f"BT /F1 16 Tf 72 730 Td ({_escape(title)}) Tj ET "
                        f"BT /F1 11 Tf 72 700 Td 16 TL {body} ET").encode("latin-1"))
    return pdf_from_streams(streams)
