"""Large payloads as content-addressed files, shared by a repo's runs.

Layout under ``.aim_core/blobs/``::

    <sha256>                  the shared copy: how a writer finds content already stored
    runs/<run_hash>/<sha256>  one hard link per run that uses the blob; readers open this
    tmp/                      files being written (a crash leaves them for ``rebuild``)

The file system's link count is the reference count: removing a run unlinks its folder, and
the shared copy goes once only its own name is left, so a blob disappears with the last run
that uses it. Every name appears by ``link``/``rename`` of a complete file, never by writing
in place. Where hard links are not supported each run keeps a full copy instead.

Durability: a blob's data is synced before it gets a name, and the folders holding new names
are synced (``sync_names``) before the transaction that refers to them commits, so a run file
that survives an OS crash never points at an empty or missing blob. Copies into
another repo are real copies (a shared inode would keep link counts from reaching one).
Run files record which blobs they use, so ``rebuild`` can restore the links from them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..errors import BlobMissingError
from .run_file import fdatasync_path

BLOBS_DIR = "blobs"
_MISSING_LINK = (FileNotFoundError,)


def blob_sha(data: bytes) -> str:
    """The content address of ``data``: its SHA-256 in hex."""
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    """The blob folder of one repo (``root`` is ``.aim_core/blobs``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.runs_root = self.root / "runs"
        self.tmp_dir = self.root / "tmp"
        self._named: set[str] = set()  # runs given new names since the last ``sync_names``

    @classmethod
    def of_repo(cls, repo_root: Path) -> BlobStore:
        """The store of the repo whose ``.aim_core`` folder is ``repo_root``."""
        return cls(Path(repo_root) / BLOBS_DIR)

    def path(self, run_hash: str, sha: str) -> Path:
        """The run's own name of a blob."""
        return self.runs_root / run_hash / sha

    # -- writing ---------------------------------------------------------------------------
    def put(self, run_hash: str, data: bytes, sha: str | None = None) -> str:
        """Store ``data`` for ``run_hash`` (once per content) and return its sha."""
        sha = sha or blob_sha(data)
        ref = self.path(run_hash, sha)
        if ref.exists() or self._link_shared(sha, ref):
            return sha
        tmp = self._temp_name()
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fdatasync(f.fileno())  # the data is down before any name points at it
        self._publish(tmp, sha, ref)
        return sha

    def sync_names(self) -> None:
        """Make the names given since the last call durable (the folders holding them)."""
        named, self._named = self._named, set()
        folders = [self.runs_root / run_hash for run_hash in sorted(named)]
        for folder in [*folders, self.runs_root, self.root] if named else []:
            _fsync_dir(folder)

    def _link_shared(self, sha: str, ref: Path) -> bool:
        """Link the shared copy to the run's name; False when there is no shared copy."""
        ref.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(self.root / sha, ref)
        except FileExistsError:
            return True
        except _MISSING_LINK:
            return False
        except OSError:  # no hard links here: the run gets its own copy below
            return False
        self._named.add(ref.parent.name)
        return True

    def _publish(self, tmp: Path, sha: str, ref: Path) -> None:
        """Give a complete temp file the run's name and the shared name, then drop it."""
        self._named.add(ref.parent.name)
        try:
            with contextlib.suppress(FileExistsError):
                os.link(tmp, ref)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, self.root / sha)
        except OSError:  # hard links unsupported: the temp file becomes the run's copy
            os.replace(tmp, ref)
            return
        os.unlink(tmp)

    def _temp_name(self) -> Path:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        return self.tmp_dir / f"{os.getpid()}-{uuid.uuid4().hex}"

    # -- reading ---------------------------------------------------------------------------
    def read(self, run_hash: str, sha: str, length: int | None = None) -> bytes:
        """The bytes of one blob of a run; BlobMissingError when it is gone or cut short."""
        for path in (self.path(run_hash, sha), self.root / sha):
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                continue
            if length is not None and len(data) != length:
                raise BlobMissingError(
                    f"Blob {sha} of run {run_hash} holds {len(data)} bytes instead of {length}: "
                    "it was cut short (an OS crash while it was written?). This element "
                    "cannot be read; the rest of the run is fine.")
            return data
        raise BlobMissingError(
            f"Blob {sha} of run {run_hash} is missing from {self.root}: it was deleted, or "
            "the run was copied without its blobs folder. This element cannot be read; the "
            "rest of the run is fine.")

    def run_blobs(self, run_hash: str) -> set[str]:
        """The shas a run holds links to."""
        try:
            return set(os.listdir(self.runs_root / run_hash))
        except FileNotFoundError:
            return set()

    # -- rm / cp / mv ----------------------------------------------------------------------
    def remove_run(self, run_hash: str) -> None:
        """Drop a run's links; a shared copy goes with the last run that used it."""
        folder = self.runs_root / run_hash
        for sha in self.run_blobs(run_hash):
            _unlink(folder / sha)
            self._drop_if_unused(sha)
        with contextlib.suppress(FileNotFoundError):
            folder.rmdir()

    def _drop_if_unused(self, sha: str, min_age: float = 0.0) -> None:
        shared = self.root / sha
        try:
            st = shared.stat()
        except FileNotFoundError:
            return
        # A writer linking it right now keeps its own link: the content survives in it.
        if st.st_nlink == 1 and (min_age <= 0 or time.time() - st.st_mtime >= min_age):
            _unlink(shared)

    def copy_run(self, run_hash: str, dest: BlobStore, dest_hash: str | None = None) -> None:
        """Give the run's blobs to ``dest`` (another repo) as real copies."""
        dest_hash = dest_hash or run_hash
        for sha in self.run_blobs(run_hash):
            ref = dest.path(dest_hash, sha)
            if ref.exists() or dest._link_shared(sha, ref):
                continue
            tmp = dest._temp_name()
            shutil.copyfile(self.path(run_hash, sha), tmp)
            fdatasync_path(tmp)
            dest._publish(tmp, sha, ref)
        dest.sync_names()

    # -- repair ----------------------------------------------------------------------------
    def rebuild(self, run_blobs: Mapping[str, Iterable[str]], min_age: float = 3600.0
                ) -> dict[str, list]:
        """Repair the folder from what the run files say they use.

        ``run_blobs`` maps every existing run to the shas its file references. Missing links
        are restored from the shared copy; folders of runs that no longer exist, shared
        copies no run links to and leftover temp files go, if older than ``min_age``
        seconds (a writer may be adding them right now). Returns what was done.
        """
        report: dict[str, list] = {"relinked": [], "missing": [], "removed_runs": [],
                                   "removed_blobs": []}
        for run_hash, shas in run_blobs.items():
            for sha in shas:
                ref = self.path(run_hash, sha)
                if ref.exists():
                    continue
                if self._link_shared(sha, ref):
                    report["relinked"].append((run_hash, sha))
                else:
                    report["missing"].append((run_hash, sha))
        for run_hash in _listdir(self.runs_root):
            if run_hash not in run_blobs and _age(self.runs_root / run_hash) >= min_age:
                self.remove_run(run_hash)
                report["removed_runs"].append(run_hash)
        for name in _listdir(self.root):
            if len(name) == 64 and (self.root / name).is_file():
                before = (self.root / name).exists()
                self._drop_if_unused(name, min_age)
                if before and not (self.root / name).exists():
                    report["removed_blobs"].append(name)
        for name in _listdir(self.tmp_dir):
            if _age(self.tmp_dir / name) >= min_age:
                _unlink(self.tmp_dir / name)
        return report


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a folder; the data itself is synced
        pass
    finally:
        os.close(fd)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _listdir(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
