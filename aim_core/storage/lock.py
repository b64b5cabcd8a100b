"""The one-writer-per-run lock: an flock'ed file ``runs/<hash>.lock`` that records host and pid.

The kernel drops an flock when its process dies, so a holder killed with ``kill -9`` frees
the run at once; the recorded host and pid only serve error messages. ``release`` unlinks the
file while still holding the flock, so no lock file outlives a closed run; ``acquire``
therefore checks, after locking, that the path still names the file it locked (a releaser may
have unlinked it in between) and starts over otherwise.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path

from ..errors import RunLockedError

HOST = os.uname().nodename
_PROBE_RETRIES = 20


class RunLock:
    """An exclusive lock on one run, held for as long as a writer has it open."""

    def __init__(self, path: Path, run_hash: str) -> None:
        self.path, self.run_hash = Path(path), run_hash
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise ``RunLockedError`` naming the live holder."""
        attempts = 0
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                attempts += 1
                if not holder and attempts < _PROBE_RETRIES:
                    time.sleep(0.01)  # a status probe, or a holder about to record itself
                    continue
                raise RunLockedError(
                    self.run_hash, holder.get("host", "?"), holder.get("pid", -1)) from None
            except BaseException:
                os.close(fd)
                raise
            if _names_same_file(fd, self.path):
                break
            os.close(fd)  # unlinked by its releaser after we opened it: lock the new one
        try:
            holder = json.dumps({"host": HOST, "pid": os.getpid()}).encode()
            os.pwrite(fd, holder, 0)
            # Not truncated to 0 first: ext4 then flushes the file's data when it is closed.
            os.ftruncate(fd, len(holder))
        except BaseException:
            _unlink_and_close(fd, self.path)
            raise
        self._fd = fd

    def release(self) -> None:
        """Unlink the lock file and drop the lock (idempotent)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            _unlink_and_close(fd, self.path)

    def forget(self) -> None:
        """Close this process's copy of the descriptor, leaving the lock to the parent."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def is_locked(path: Path) -> bool:
    """True while some live process holds the lock at ``path``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _names_same_file(fd: int, path: Path) -> bool:
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)


def _unlink_and_close(fd: int, path: Path) -> None:
    try:
        if _names_same_file(fd, path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    finally:
        os.close(fd)


def _read_holder(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return {}
