"""Limits that hold on every path into a file: its size before reading, an archive's contents before
unpacking, its pages after parsing. Each refusal names the file, the limit and the setting that raises it."""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass

from ingest.encoding import check_size
from ingest.errors import IngestError

MB = 1024 * 1024
__all__ = ["ReadLimits", "check_archive", "check_pages", "check_size"]

# Office Open XML, OpenDocument and EPUB files are zip archives that parsers unpack into memory.
ZIP_SUFFIXES = (".docx", ".docm", ".pptx", ".pptm", ".xlsx", ".xlsm", ".epub", ".odt", ".ods", ".odp")

# Measured: a 50,000-row .xlsx unpacks to 17 MB, a 300-page text .docx to 2 MB (python-docx then holds
# ~20x that: 66 MB RSS; on a 1 MB .docx holding 1 GiB of XML it grew to 22 GB). Photos and videos in a
# deck unpack to about their packed size, so the limit sits above the 200 MB file limit rather than far
# below it; a zip bomb is refused from its directory before anything is unpacked.
DEFAULT_MAX_UNPACKED_MB = 256
DEFAULT_MAX_ARCHIVE_ENTRIES = 10_000  # a large epub has a few hundred files
DEFAULT_MAX_PAGES = 5_000


@dataclass(frozen=True)
class ReadLimits:
    """How much one file may hold. ``max_bytes`` None: ``KB_MAX_FILE_MB`` from the environment, else 200 MB."""

    max_bytes: int | None = None
    max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_MB * MB
    max_archive_entries: int = DEFAULT_MAX_ARCHIVE_ENTRIES
    max_pages: int = DEFAULT_MAX_PAGES


def check_archive(path: str | os.PathLike[str], limits: ReadLimits) -> None:
    """For zip-based formats: refuse too many entries or too much unpacked data, read from the zip's
    directory alone. Python's zipfile never inflates an entry past the size its directory declares,
    so a directory that lies only truncates (and fails the CRC), it cannot unpack more."""
    if os.path.splitext(os.fspath(path))[1].lower() not in ZIP_SUFFIXES:
        return
    try:
        with open(path, "rb") as f:
            entries = _declared_entries(f)
            if entries is not None and entries > limits.max_archive_entries:
                raise _too_many(path, entries, limits)
            f.seek(0)
            with zipfile.ZipFile(f) as archive:
                infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as exc:
        raise IngestError(
            path, f"the file is not a valid zip-based document ({exc})", "re-save it in its usual application"
        ) from exc
    except OSError as exc:
        raise IngestError(path, f"the file cannot be read ({exc.strerror or exc})", "check the path") from exc
    if len(infos) > limits.max_archive_entries:
        raise _too_many(path, len(infos), limits)
    unpacked = sum(info.file_size for info in infos)
    if unpacked > limits.max_unpacked_bytes:
        raise IngestError(
            path,
            f"it unpacks to {unpacked / MB:.0f} MB, above the {limits.max_unpacked_bytes / MB:.0f} MB limit "
            "for unpacked documents (possibly a zip bomb)",
            "if the file is genuine, raise KB_MAX_UNPACKED_MB",
        )


def _declared_entries(f) -> int | None:  # noqa: ANN001 - a binary file
    """The entry count the end-of-directory record declares, read before building the entry list
    (millions of entries would take much memory as ZipInfo objects)."""
    end_record = getattr(zipfile, "_EndRecData", None)
    if end_record is None:  # pragma: no cover - a private helper of every CPython so far
        return None
    record = end_record(f)
    return None if record is None else int(record[4])  # _ECD_ENTRIES_TOTAL


def _too_many(path: str | os.PathLike[str], entries: int, limits: ReadLimits) -> IngestError:
    return IngestError(
        path,
        f"the archive holds {entries} entries, above the {limits.max_archive_entries} limit",
        "if the file is genuine, raise KB_MAX_ARCHIVE_ENTRIES",
    )


def check_pages(path: str | os.PathLike[str], pages: int, limits: ReadLimits) -> None:
    """Refuse a paged document with more pages than the limit (before its text is extracted, where the
    loader can count first)."""
    if pages > limits.max_pages:
        raise IngestError(
            path,
            f"it has {pages} pages, above the {limits.max_pages} page limit",
            "split the document, or raise KB_MAX_PAGES_PER_FILE",
        )
