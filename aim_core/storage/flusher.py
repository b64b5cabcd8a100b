"""This process's open writers and the one background thread that flushes them.

The flusher thread runs only while writers are open: it starts with the first one and ends
when the last one closes (the closing thread waits for it), so nothing of aim-core keeps
running between runs. Each cycle flushes the due writers, then commits their catalog entries
in one transaction per catalog (group commit). A writer whose ``Run`` was dropped inside
another storage operation is closed by the flusher instead of in the middle of that one.
A forked child forgets its parent's writers instead of writing into them.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .. import deferred
from ..warn import warn_safely
from . import exits
from .catalog import Catalog, close_idle, forget_catalogs
from .failures import out_of_fds, too_many_open_files
from .run_reader import forget_readers
from .writer import RunWriter

FLUSH_AT_POINTS = 1 << 18  # a sequence buffer this large is flushed before its interval ends
JOIN_SECONDS = 30.0
_writers: dict[tuple[Path, str], RunWriter] = {}
# Runs dropped where closing them at once is unsafe; appended without any lock, because the
# collector runs finalizers on any thread, inside any lock (a sampler's, the registry's).
_to_close: collections.deque[tuple[Path, RunWriter]] = collections.deque()
_registry_lock = threading.RLock()
_flusher: list[Flusher] = []


class Flusher(threading.Thread):
    """Wakes every flush interval (or when a buffer grows large) and flushes due writers."""

    def __init__(self) -> None:
        super().__init__(name="aim-core-flusher", daemon=True)
        self.wake_event = threading.Event()
        self.done = False
        self._stopping = False  # not ``_stop``: threading.Thread has a method of that name
        self._warned: set[Path] = set()

    def run(self) -> None:
        """Loop until no writer is left, or until ``stop()``."""
        while True:
            self.wake_event.wait(_seconds_to_next())
            self.wake_event.clear()
            with _registry_lock:
                if not _writers:
                    self.done = True  # checked under the lock: a new writer starts a new thread
                    return
                self.done = self._stopping
                writers = list(_writers.values())
            close_dropped()
            if deferred.held_count() >= deferred.HOLD_LIMIT:
                _convert_held()
            self._cycle(writers, final=self.done)
            if self.done:
                return

    def stop(self) -> None:
        """Flush every open writer once and end the thread (test harnesses, such as
        Lightning's, stop leftover daemon threads this way). The next new sequence, param
        change or large buffer starts a new one; ``close()`` and exit still write everything."""
        self._stopping = True
        self.wake_event.set()
        if threading.current_thread() is not self:
            self.join(JOIN_SECONDS)

    def _cycle(self, writers: list[RunWriter], final: bool = False) -> None:
        now = float("inf") if final else time.monotonic()
        catalogs: dict[Path, Catalog] = {}
        for writer in writers:
            try:
                if writer.closed:
                    continue
                if writer.next_flush <= now or writer.pending_count() >= FLUSH_AT_POINTS:
                    writer.flush_quietly()
                    catalogs[writer.catalog.path] = writer.catalog
            except Exception as exc:  # keep flushing the other runs, whatever happens
                warn_safely(f"aim-core flusher: {exc!r}", stacklevel=1)
        for catalog in catalogs.values():
            try:
                catalog.commit_staged()
            except Exception as exc:  # entries stay staged and are retried
                if catalog.path not in self._warned:
                    self._warned.add(catalog.path)
                    warn_safely(f"aim-core could not update the catalog {catalog.path} "
                                f"({exc!r}); retrying.", stacklevel=1)

    def wake(self) -> None:
        """Ask for a flush now (a buffer grew large)."""
        self.wake_event.set()


def _convert_held() -> None:
    try:
        deferred.resolve_held()  # frees the device memory they hold; no I/O needed
    except Exception as exc:  # the values stay held; the next flush converts them
        warn_safely(f"aim-core flusher: {exc!r}", stacklevel=1)


def _wake_flusher() -> None:
    thread = _flusher[0] if _flusher else None  # no lock: called from track()
    if thread is not None and not thread.done:
        thread.wake()


deferred.on_backlog(_wake_flusher)


def _seconds_to_next() -> float:
    with _registry_lock:
        writers = list(_writers.values())
        if _to_close:
            return 0.0
    if not writers:
        return 0.0
    due = min(w.next_flush for w in writers) - time.monotonic()
    return min(max(due, 0.005), 1.0)


def flusher() -> Flusher:
    """Return this process's flusher thread, starting it when none runs."""
    with _registry_lock:
        if not _flusher or _flusher[0].done or not _flusher[0].is_alive():
            _flusher[:] = [Flusher()]
            _flusher[0].start()
        return _flusher[0]


def ensure_flusher() -> None:
    """Start the flusher thread if none runs (a writer has something to write)."""
    thread = _flusher[0] if _flusher else None
    if thread is None or thread.done or not thread.is_alive():
        flusher()


RunWriter.wake_flusher = staticmethod(ensure_flusher)


def get_or_open(repo_dir: Path, run_hash: str, opener: Callable[[], RunWriter]) -> RunWriter:
    """Return the open writer of a run, or register the one ``opener`` builds.

    The flusher thread starts when a writer first has something to write (a new sequence,
    a param), so a run opened and closed within one flush interval starts no thread. Out of
    file descriptors, runs dropped in reference cycles are collected once and it retries.
    """
    for attempt in (1, 2):
        close_dropped()
        try:
            return _get_or_open(repo_dir, run_hash, opener)
        except Exception as exc:
            if not out_of_fds(exc):
                raise
            if attempt == 2:
                raise too_many_open_files(run_hash) from exc
        gc.collect()  # runs held in reference cycles keep their files until the collector runs
    raise AssertionError("unreachable")


def _get_or_open(repo_dir: Path, run_hash: str, opener: Callable[[], RunWriter]) -> RunWriter:
    key = (repo_dir, run_hash)
    # critical: a run collected meanwhile is queued, not closed inside the registry lock
    with exits.critical(), _registry_lock:
        writer = _writers.get(key)
        if writer is None or writer.closed:
            writer = opener()
            _writers[key] = writer
        writer.handles += 1
        if writer.sequences:  # resumed: points may come into existing sequences at once
            flusher()
    exits.install_hooks(close_all, flush_all)  # not inside critical(): it swaps SIGTERM's handler
    return writer


def find_writer(repo_dir: Path, run_hash: str) -> RunWriter | None:
    """Return the open writer of a run in this process, if any."""
    with _registry_lock:
        return _writers.get((repo_dir, run_hash))


def release(repo_dir: Path, writer: RunWriter, status: str | None) -> None:
    """Drop one handle; the last one closes the writer (``None``: the exit status)."""
    with _registry_lock:
        writer.handles -= 1
        if writer.handles > 0:
            return
    _close_writer(repo_dir, writer, status)


def release_dropped(repo_dir: Path, writer: RunWriter) -> None:
    """A ``Run`` was garbage-collected without ``close()``: close its handle now on the main
    thread outside any storage operation; elsewhere queue it (no lock taken here) for the
    flusher or the next ``Run()``, repo read or exit."""
    if threading.current_thread() is threading.main_thread() and not exits.in_critical():
        release(repo_dir, writer, None)
        return
    _to_close.append((repo_dir, writer))
    thread = _flusher[0] if _flusher else None
    if thread is not None and not thread.done:
        thread.wake()


def close_dropped() -> None:
    """Release the handles of runs dropped where they could not be closed at once."""
    while True:
        try:
            repo_dir, writer = _to_close.popleft()
        except IndexError:
            return
        try:
            release(repo_dir, writer, None)
        except Exception as exc:  # a failing close must not stop the others
            warn_safely(str(exc), stacklevel=1)


def _close_writer(repo_dir: Path, writer: RunWriter, status: str | None) -> None:
    """Close while the writer stays registered (a signal handler can still reach it); a
    close interrupted before it began leaves it registered, for the exit hook to close."""
    try:
        writer.close(status or exits.exit_status())
    finally:
        if writer.closed:
            with _registry_lock:
                if _writers.get((repo_dir, writer.run_hash)) is writer:
                    del _writers[(repo_dir, writer.run_hash)]
                last = not _writers
            if last:
                _stop_flusher()


def _stop_flusher() -> None:
    with _registry_lock:
        thread = _flusher[0] if _flusher else None
    if thread is None or thread is threading.current_thread():
        return
    thread.wake()
    deadline = time.monotonic() + JOIN_SECONDS
    while thread.is_alive() and time.monotonic() < deadline:
        thread.join(0.05)
        with _registry_lock:
            if _writers:
                return  # a new run started meanwhile and uses this thread


def flush_repo(repo_dir: Path) -> None:
    """Flush every open writer of one repo and commit the catalog (before this process reads)."""
    close_dropped()
    with _registry_lock:
        writers = [w for (path, _), w in _writers.items() if path == repo_dir]
    for writer in writers:
        if not writer.closed:
            writer.flush_quietly()
    if writers:
        writers[0].catalog.commit_staged_quietly()


def flush_all() -> None:
    """Flush every open writer and commit the catalogs, keeping them open (best effort)."""
    with _registry_lock:
        writers = [w for w in _writers.values() if not w.closed]
    for writer in writers:
        writer.flush_quietly()
    for catalog in {id(w.catalog): w.catalog for w in writers}.values():
        catalog.commit_staged_quietly()


def close_all(status: str | None = None) -> None:
    """Close every open writer (at exit, on SIGTERM), then idle catalogs."""
    status = status or exits.exit_status()
    with _registry_lock:
        writers = list(_writers.items())
        _to_close.clear()
    for (repo_dir, _), writer in writers:
        try:
            _close_writer(repo_dir, writer, status)
        except Exception as exc:
            warn_safely(str(exc), stacklevel=1)
    with contextlib.suppress(Exception):
        close_idle()


def _after_fork_in_child() -> None:
    global _registry_lock
    _registry_lock = threading.RLock()  # another thread may have held it at fork time
    for writer in _writers.values():
        writer.forget()
    _writers.clear()
    _to_close.clear()
    _flusher.clear()
    forget_catalogs()
    forget_readers()


os.register_at_fork(after_in_child=_after_fork_in_child)
