"""The one-writer-per-run lock: an flock'ed file that records host and pid.

The kernel drops an flock when its process dies, so a holder killed with ``kill -9`` frees
the run at once; the recorded host and pid only serve error messages.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from ..errors import RunLockedError

HOST = os.uname().nodename


class RunLock:
    """An exclusive lock on one run, held for as long as a writer has it open."""

    def __init__(self, path: Path, run_hash: str) -> None:
        self.path, self.run_hash = Path(path), run_hash
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise ``RunLockedError`` naming the live holder."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunLockedError(
                self.run_hash, holder.get("host", "?"), holder.get("pid", -1)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"host": HOST, "pid": os.getpid()}).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.ftruncate(fd, 0)
            finally:
                os.close(fd)

    def forget(self) -> None:
        """Close this process's copy of the descriptor, leaving the lock to the parent."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def is_locked(path: Path) -> bool:
    """True while some live process holds the lock at ``path``."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _read_holder(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return {}
