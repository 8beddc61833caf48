"""Small PDFs with a title and several lines a page (Helvetica, exact xref offsets), for the evidence view."""

from __future__ import annotations

from tests.ingest.pdfgen import _escape


def pdf_with_lines(pages: list[tuple[str, list[str]]]) -> bytes:
    """One page per ``(title, lines)``: the title in 16 pt, the lines in 11 pt below it (Latin-1 text)."""
    n = len(pages)
    font_id = 3 + 2 * n
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: ("<< /Type /Pages /Kids [" + " ".join(f"{3 + 2 * i} 0 R" for i in range(n)) + f"] /Count {n} >>").encode(),
        font_id: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    for i, (title, lines) in enumerate(pages):
        page_id, content_id = 3 + 2 * i, 4 + 2 * i
        objects[page_id] = (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 "
                            f"{font_id} 0 R >> >> /Contents {content_id} 0 R >>").encode()
        body = " T* ".join(f"({_escape(line)}) Tj" for line in lines)
        stream = (f"BT /F1 16 Tf 72 730 Td ({_escape(title)}) Tj ET "
                  f"BT /F1 11 Tf 72 700 Td 16 TL {body} ET").encode("latin-1")
        objects[content_id] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for oid in sorted(objects):
        offsets[oid] = len(out)
        out += b"%d 0 obj\n" % oid + objects[oid] + b"\nendobj\n"
    xref = len(out)
    size = max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for oid in range(1, size):
        out += b"%010d 00000 n \n" % offsets[oid]
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)
