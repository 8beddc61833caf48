"""An exclusive, cross-process writer lock on a file (``fcntl.flock``; released by the OS on death)."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

from .errors import StoreLockedError


class WriterLock:
    """Non-reentrant exclusive lock between processes and between the threads sharing this object;
    ``acquire(timeout)`` waits until ``timeout`` seconds have passed.

    ``flock`` rather than a pid file: the kernel drops it when the holder dies, even by SIGKILL, so
    a crashed indexer never leaves the knowledge base locked. The holder's pid is written into the
    file only to make the error message useful. One object can be shared by a knowledge base and its
    store: whoever holds it (:attr:`held_here`) writes without taking it again.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._owner: int | None = None  # thread holding the lock through this object
        self._threads = threading.Lock()

    @property
    def held(self) -> bool:
        """Whether this object currently holds the lock (for any thread)."""
        return self._fd is not None

    @property
    def held_here(self) -> bool:
        """Whether the calling thread holds the lock through this object."""
        return self._fd is not None and self._owner == threading.get_ident()

    def acquire(self, timeout: float = 0.0) -> None:
        """Take the lock, waiting up to ``timeout`` seconds, else raise ``StoreLockedError``."""
        if self.held_here:
            raise RuntimeError("WriterLock is not reentrant")
        deadline = time.monotonic() + max(timeout, 0.0)
        got = self._threads.acquire(timeout=timeout) if timeout > 0 else self._threads.acquire(blocking=False)
        if not got:
            raise StoreLockedError(
                f"knowledge base is being written by another task of this process (waited {timeout:g} s); "
                f"wait for it to finish, then retry (lock file: {self.path})"
            )
        try:
            self._acquire_file(deadline, timeout)
        except BaseException:
            self._threads.release()
            raise
        self._owner = threading.get_ident()

    def _acquire_file(self, deadline: float, timeout: float) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
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
        self._owner = None
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
            self._threads.release()

    def _message(self, fd: int, timeout: float) -> str:
        raw = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        holder = f"pid {raw}" if raw.isdigit() else "pid unknown"
        waited = f" (waited {timeout:g} s)" if timeout > 0 else ""
        return (
            f"knowledge base is being written by another process ({holder}){waited}; wait for it "
            f"to finish or stop it, then retry (lock file: {self.path})"
        )
