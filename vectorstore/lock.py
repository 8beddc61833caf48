"""An exclusive, cross-process writer lock on a file (``fcntl.flock``; released by the OS on death)."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from .errors import StoreLockedError


class WriterLock:
    """Non-reentrant exclusive lock; ``acquire(timeout)`` polls until ``timeout`` seconds have passed.

    ``flock`` rather than a pid file: the kernel drops it when the holder dies, even by SIGKILL, so
    a crashed indexer never leaves the knowledge base locked. The holder's pid is written into the
    file only to make the error message useful.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object currently holds the lock."""
        return self._fd is not None

    def acquire(self, timeout: float = 0.0) -> None:
        """Take the lock, waiting up to ``timeout`` seconds, else raise ``StoreLockedError``."""
        if self._fd is not None:
            raise RuntimeError("WriterLock is not reentrant")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + max(timeout, 0.0)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StoreLockedError(self._message(fd, timeout)) from None
                    time.sleep(0.05)
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        """Give the lock back (no-op when not held)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _message(self, fd: int, timeout: float) -> str:
        raw = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        holder = f"pid {raw}" if raw.isdigit() else "pid unknown"
        waited = f" (waited {timeout:g} s)" if timeout > 0 else ""
        return (
            f"knowledge base is being written by another process ({holder}){waited}; wait for it "
            f"to finish or stop it, then retry (lock file: {self.path})"
        )
