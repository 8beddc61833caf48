"""Saving uploaded files safely inside the data directory before they are indexed."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

from vectorstore.fsutil import atomic_write

from .errors import KBError

_UNSAFE = re.compile(r"[^\w.\-\u3400-\u9fff ()（）]+")


def safe_filename(name: str) -> str:
    """Strip directories and odd characters: ``../../evil.txt`` -> ``evil.txt``; never empty or hidden."""
    name = unicodedata.normalize("NFC", name.replace("\\", "/").split("/")[-1])
    name = _UNSAFE.sub("_", name).strip(" .")
    return name or "upload"


def save_upload(upload_dir: Path, name: str, data: bytes, *, allowed: set[str], max_bytes: int) -> Path:
    """Write an upload under ``upload_dir``; the same bytes under the same name reuse the stored file."""
    clean = safe_filename(name)
    suffix = Path(clean).suffix.lower()
    if suffix not in allowed:
        raise KBError(f"{name}: files of type {suffix or '(none)'} cannot be indexed; allowed: "
                      + " ".join(sorted(allowed)))
    if len(data) > max_bytes:
        raise KBError(f"{name}: {len(data) >> 20} MB is over the {max_bytes >> 20} MB upload limit "
                      "(KB_MAX_FILE_MB); split the file or raise the limit")
    upload_dir.mkdir(parents=True, exist_ok=True)
    target = (upload_dir / clean).resolve()
    if upload_dir.resolve() not in target.parents:  # defence in depth; safe_filename already strips dirs
        raise KBError(f"{name}: refused, the name points outside the upload folder")
    if target.exists() and target.read_bytes() != data:
        # A different file under a name already used: keep both, distinguished by content.
        digest = hashlib.sha256(data).hexdigest()[:8]
        target = target.with_name(f"{target.stem}-{digest}{target.suffix}")
    atomic_write(target, data)  # a temp name per call: two uploads of one name never collide
    return target


def index_uploads(kb, files, settings, *, progress=None):  # type: ignore[no-untyped-def]
    """Save uploaded ``(name, bytes)`` pairs safely, then index them; returns (report, refused messages)."""
    from ingest import SUPPORTED_SUFFIXES

    saved, refused = [], []
    for name, data in files:
        try:
            saved.append(save_upload(settings.data_dir / "uploads" / kb.name, name, data,
                                     allowed=set(SUPPORTED_SUFFIXES), max_bytes=settings.max_file_mb << 20))
        except KBError as exc:
            refused.append(str(exc))
    return kb.index_paths(saved, progress=progress), refused
