"""Every exception aim-core raises on purpose; each message says what to do next."""

from __future__ import annotations


class AimCoreError(Exception):
    """Base class of every aim-core error."""


class RepoError(AimCoreError):
    """A repo path is missing, not a directory, or not an aim-core repo."""


class RepoNotFoundError(RepoError):
    """No aim-core repo exists at the given path."""


class RunNotFoundError(AimCoreError, KeyError):
    """No run with the given hash exists in the repo."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class RunLockedError(AimCoreError):
    """Another live process holds the run open for writing."""

    def __init__(self, run_hash: str, host: str, pid: int) -> None:
        self.run_hash, self.host, self.pid = run_hash, host, pid
        super().__init__(
            f"Run {run_hash} is open for writing by pid {pid} on host {host!r}. "
            "Close it there first, open it with read_only=True, or start a new run."
        )


class RunCorruptedError(AimCoreError):
    """A run file is proven damaged (bad SQLite pages or header, a chunk failing its checks)."""


class RunUnavailableError(AimCoreError):
    """A run file cannot be read now for a reason that is not damage (no file descriptors
    left, the file cannot be opened, it is locked); nothing is recorded about the run."""


class NewerFormatError(AimCoreError):
    """A file was written by a newer aim-core; upgrade to read it."""


class CatalogDamagedError(RepoError):
    """The repo's catalog ``index.sqlite`` is damaged or missing (``aim-core reindex``)."""


class ReadOnlyRunError(AimCoreError):
    """A write was attempted on a run opened with read_only=True."""


class QueryError(AimCoreError, ValueError):
    """An AimQL query is malformed or reaches outside the data."""


class QuerySyntaxError(QueryError, SyntaxError):
    """A query that cannot be parsed or uses a forbidden construct (a SyntaxError, as in Aim)."""

    def __init__(self, message: str = "") -> None:
        SyntaxError.__init__(self, message)  # sets .msg, which tracebacks print


class StorageError(AimCoreError):
    """Points could not be written; raised only by close() or explicit flush()."""


class DiskFullError(StorageError):
    """The disk holding the repo is full."""


class ConvertError(AimCoreError):
    """A conversion source cannot be read at all (missing folder, package or store)."""


class BlobMissingError(AimCoreError):
    """A stored element's payload file is gone or incomplete."""


class RemoteError(AimCoreError):
    """A tracking server could not be reached or refused a request."""
