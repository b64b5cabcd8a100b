"""What a failed file operation means: proven damage, a full disk, or a passing condition.

Only proven damage (SQLite says the file is corrupt or not a database, a chunk or a JSON value
fails its checks) makes a run ``corrupted``. Running out of file descriptors, a file that
cannot be opened or is locked, and a full disk are reported as what they are.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from pathlib import Path

from ..errors import AimCoreError, DiskFullError, RunCorruptedError, RunUnavailableError

SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_IOERR = 5, 6, 8, 10
SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB = 11, 13, 14, 26
_BY_MESSAGE = (  # Python < 3.11 has no ``sqlite_errorcode``
    ("malformed", SQLITE_CORRUPT), ("not a database", SQLITE_NOTADB),
    ("disk is full", SQLITE_FULL), ("unable to open", SQLITE_CANTOPEN),
    ("is locked", SQLITE_BUSY), ("readonly", SQLITE_READONLY), ("disk i/o", SQLITE_IOERR),
)
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class ChunkDamagedError(ValueError):
    """A stored chunk or value failed its checks (bad header, wrong length, bad JSON)."""


def sqlite_code(exc: BaseException) -> int | None:
    """The primary SQLite result code of ``exc``, if it is an SQLite error."""
    if not isinstance(exc, sqlite3.Error):
        return None
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF
    text = str(exc).lower()
    return next((value for needle, value in _BY_MESSAGE if needle in text), None)


def is_damage(exc: BaseException) -> bool:
    """True only when ``exc`` proves the file is damaged."""
    if isinstance(exc, (ChunkDamagedError, json.JSONDecodeError, UnicodeDecodeError)):
        return True
    return sqlite_code(exc) in (SQLITE_CORRUPT, SQLITE_NOTADB)


def is_disk_full(exc: BaseException) -> bool:
    """True when ``exc`` says the disk (or the quota) is full."""
    if isinstance(exc, DiskFullError) or isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
        return True
    return sqlite_code(exc) == SQLITE_FULL


def cause(exc: BaseException) -> str:
    """A short description of why an operation failed, for messages."""
    if is_disk_full(exc):
        return "the disk is full"
    if isinstance(exc, OSError) and exc.errno == errno.EMFILE:
        return "too many open files"
    code = sqlite_code(exc)
    if code in (SQLITE_BUSY, SQLITE_LOCKED):
        return "the file is locked by another process"
    if code == SQLITE_CANTOPEN:
        return "the file cannot be opened (missing, no permission, or too many open files)"
    if code == SQLITE_READONLY:
        return "the file or its folder is read-only"
    return f"{type(exc).__name__}: {exc}"


FD_ERRNOS = (errno.EMFILE, errno.ENFILE)
_SPARE_FDS = 8  # what opening a run takes: its file, WAL, shared memory, lock, the catalog's


def out_of_fds(exc: BaseException) -> bool:
    """True when ``exc`` (or its cause) comes from this process running out of file
    descriptors: EMFILE, or SQLite's "unable to open" while no spare descriptor is left."""
    for err in (exc, exc.__cause__):
        if isinstance(err, OSError) and err.errno in FD_ERRNOS:
            return True
        if err is not None and sqlite_code(err) == SQLITE_CANTOPEN:
            return _fds_exhausted()
    return False


def _fds_exhausted() -> bool:
    opened: list[int] = []
    try:
        for _ in range(_SPARE_FDS):
            opened.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
    except OSError as exc:
        return exc.errno in FD_ERRNOS
    finally:
        for fd in opened:
            os.close(fd)
    return False


def too_many_open_files(run_hash: str) -> RunUnavailableError:
    """The error when a run cannot be opened because no file descriptor is left."""
    return RunUnavailableError(
        f"Run {run_hash} cannot be opened: too many open files. Close runs you no longer use "
        "(run.close(), or `with Run(...) as run:`) or raise the limit (`ulimit -n`).")


def disk_full_error(path: Path, exc: BaseException) -> DiskFullError:
    """The error for a write that failed because the disk is full."""
    return DiskFullError(
        f"The disk holding {path} is full ({exc}); free some space and try again.")


def read_error(run_hash: str, path: Path, exc: BaseException) -> AimCoreError:
    """The aim-core error for a failed read of a run file."""
    if is_damage(exc):
        return RunCorruptedError(
            f"Run {run_hash} cannot be read ({exc}); its file {path} is damaged. Other runs "
            f"are unaffected; delete this run with `aim-core runs rm {run_hash}` or restore the "
            "file from a backup.")
    return RunUnavailableError(
        f"Run {run_hash} cannot be read now: {cause(exc)} ({path}). Nothing is wrong with the "
        "run itself; retry once the cause is gone (close other files or runs, raise "
        "`ulimit -n`, or check the permissions of the repo folder).")
