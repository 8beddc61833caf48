"""Builders of hostile files: a zip bomb dressed as a .docx, the corpus's other bad files, and a folder of
very many tiny files."""

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


def encrypted_pdf(path: Path, text: str) -> Path:
    """A PDF with an open password (RC4, pypdf's own implementation)."""
    import pypdf

    from tests.ingest.pdfgen import pdf_bytes

    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(pdf_bytes([text]))))
    writer.encrypt("secret", algorithm="RC4-128")
    with open(path, "wb") as f:
        writer.write(f)
    return path


GOOD = {  # file name -> a sentence only it holds
    "leave.txt": "正式员工每年享有十五天带薪年假，病假需提供医院证明。",
    "vpn.md": "The VPN server listens on port 1194 and rotates keys every 90 days.",
    "handbook.pdf": "The canteen opens at seven in the morning and closes at eight.",
    "expenses.docx": "报销单需在每月五日前提交给财务部门审核。",
    "two\nlines.txt": "A newline in this file name must not break the listing.",
}

# file name -> what its reason must say
BAD = {
    "empty.txt": "the file is empty",
    "random.txt": "looks binary",
    "encrypted.pdf": "the PDF is encrypted",
    "fake.pdf": "not a PDF but an HTML page",
    "loop.txt": "loops back on itself",
    "bomb.docx": "KB_MAX_UNPACKED_MB",
    "huge.txt": "KB_MAX_FILE_MB",
    "broken.docx": "not a valid zip-based document",
    "scan.pdf": "not even by OCR",  # a page with no text layer and nothing legible on it
    "photo.heic": "unsupported type .heic",
}
MAX_FILE_MB = 5  # huge.txt is 6 MB: above the limit, and above the 4 MB where text files are streamed


def hostile_corpus(root: Path) -> Path:
    """A folder of the good files above and every kind of bad one a careless or hostile user brings."""
    import random

    import docx

    from tests.ingest.pdfgen import write_pdf

    root.mkdir(parents=True)
    for name, sentence in GOOD.items():
        path = root / name
        if name.endswith(".pdf"):
            write_pdf(path, [sentence])
        elif name.endswith(".docx"):
            document = docx.Document()
            document.add_paragraph(sentence)
            document.save(path)
        else:
            path.write_text(sentence + "\n", encoding="utf-8")
    (root / "empty.txt").write_bytes(b"")
    (root / "random.txt").write_bytes(random.Random(12).randbytes(64 * 1024))
    encrypted_pdf(root / "encrypted.pdf", "Salaries are confidential.")
    (root / "fake.pdf").write_text("<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>")
    (root / "loop.txt").symlink_to(root / "loop2.txt")
    (root / "loop2.txt").symlink_to(root / "loop.txt")
    docx_bomb(root / "bomb.docx")
    line = "A line of an enormous log file that nobody should index whole.\n"
    (root / "huge.txt").write_text(line * (6 * 1024 * 1024 // len(line) + 1))
    (root / "broken.docx").write_bytes(random.Random(3).randbytes(4096))
    write_pdf(root / "scan.pdf", [""])
    (root / "photo.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    return root


def make_folder(root: Path, n: int, *, per_folder: int = 1000) -> Path:
    """``n`` tiny text files, ``per_folder`` to a sub-folder (as a shared drive is laid out)."""
    root.mkdir()
    for i in range(n):
        folder = root / f"d{i // per_folder:04d}"
        if i % per_folder == 0:
            folder.mkdir()
        (folder / f"f{i:07d}.txt").write_text(f"文件{i}：年假规定第{i}条，报销须在三十天内提交。", encoding="utf-8")
    return root
