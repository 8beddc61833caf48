"""Finding the files to index under the paths a user gives, and hashing their content."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)  # slots: a folder of 100,000 files holds 100,000 of them
class Candidate:
    """A file to index, or one passed over with the reason."""

    path: Path
    skipped: str = ""


def collect_files(
    paths: Iterable[str | Path], suffixes: Iterable[str], *, ignore: Callable[[Path], bool] | None = None,
) -> list[Candidate]:
    """Files named directly are always candidates (an unsupported one fails later with a reason);
    folders are walked recursively, skipping hidden entries and reporting unsupported files as skipped.
    ``ignore``: files (named or found) left out without a word (``kb watch``: editors' temporary files)."""
    allowed = {s.lower() for s in suffixes}
    found: dict[Path, Candidate] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            start = len(found)
            for child in path.rglob("*"):  # walked lazily: each found path is held once, resolved
                rel = child.relative_to(path)
                if any(part.startswith(".") for part in rel.parts):
                    continue
                if not child.is_file():
                    # A link to nothing, or a loop: say so rather than pass it by.
                    if child.is_symlink() and not (ignore is not None and ignore(child)):
                        found.setdefault(absolute(child), Candidate(absolute(child), not_a_file(child)))
                    continue
                if ignore is not None and ignore(child):
                    continue
                reason = "" if child.suffix.lower() in allowed else f"unsupported type {child.suffix or '(none)'}"
                resolved = child.resolve()
                found.setdefault(resolved, Candidate(resolved, reason))
            # In path order, as a sorted walk gave them (the dict keeps those found under earlier paths first).
            walked = sorted(list(found)[start:])
            for key in walked:
                found[key] = found.pop(key)
        elif ignore is None or not ignore(path):
            found.setdefault(absolute(path), Candidate(absolute(path)))
    return list(found.values())


def absolute(path: Path) -> Path:
    """The resolved path; a symlink loop cannot be resolved, so it keeps its own absolute name."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):  # RuntimeError: "Symlink loop" (Python < 3.13)
        return Path(os.path.abspath(path))


def not_a_file(path: Path) -> str:
    """Why ``path`` cannot be read as a file, in words."""
    if path.is_symlink() and not path.exists():
        try:
            path.resolve(strict=True)
        except (RuntimeError, OSError) as exc:
            if "loop" in str(exc).lower() or getattr(exc, "errno", None) == 40:
                return "a symbolic link that loops back on itself"
        return "a symbolic link to nothing (its target is gone)"
    if path.is_dir():
        return "a folder, not a file"
    if not path.exists():
        return "no such file (check the path)"
    return "not a regular file"


def file_sha256(path: Path) -> str:
    """Content hash, read in blocks so large files never sit in memory whole."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def chunk_id(source: str, content_hash: str, index: int, salt: int = 0) -> int:
    """A stable 63-bit id for chunk ``index`` of one version of one file (``salt`` picks another
    when that one is taken, e.g. by chunks moved here from another path)."""
    key = f"{source}\0{content_hash}\0{index}" + (f"\0{salt}" if salt else "")
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") & ((1 << 63) - 1)


def is_under(path: str | Path, root: Path) -> bool:
    """Whether ``path`` lies inside folder ``root`` (both absolute)."""
    return Path(path).is_relative_to(root)
