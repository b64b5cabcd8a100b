"""This process's open writers and the one background thread that flushes them.

Also the exit paths: ``atexit``, SIGTERM and an uncaught exception (including Ctrl-C) close
every open run, so buffered points reach the disk; a forked child forgets its parent's
writers instead of writing into them.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from .. import deferred
from .catalog import forget_catalogs
from .writer import RunWriter

FLUSH_AT_POINTS = 1 << 18  # a sequence buffer this large is flushed before its interval ends
_writers: dict[tuple[Path, str], RunWriter] = {}
_registry_lock = threading.RLock()
_state = {"failed": False, "hooks": False}


class Flusher(threading.Thread):
    """Wakes every flush interval (or when a buffer grows large) and flushes due writers."""

    def __init__(self) -> None:
        super().__init__(name="aim-core-flusher", daemon=True)
        self.wake_event = threading.Event()

    def run(self) -> None:
        """Loop until the process ends."""
        while True:
            self.wake_event.wait(self._seconds_to_next())
            self.wake_event.clear()
            if deferred.held_count() >= deferred.HOLD_LIMIT:
                self._convert_held()
            now = time.monotonic()
            for writer in open_writers():
                try:
                    if writer.next_flush <= now or writer.pending_count() >= FLUSH_AT_POINTS:
                        writer.flush_quietly()
                except Exception as exc:  # keep flushing the other runs, whatever happens
                    warnings.warn(f"aim-core flusher: {exc!r}", RuntimeWarning, stacklevel=1)

    @staticmethod
    def _convert_held() -> None:
        try:
            deferred.resolve_held()  # frees the device memory they hold; no I/O needed
        except Exception as exc:  # the values stay held; a flush converts them again
            warnings.warn(f"aim-core flusher: {exc!r}", RuntimeWarning, stacklevel=1)

    @staticmethod
    def _seconds_to_next() -> float:
        writers = open_writers()
        if not writers:
            return 1.0
        due = min(w.next_flush for w in writers) - time.monotonic()
        return min(max(due, 0.005), 1.0)

    def wake(self) -> None:
        """Ask for a flush now (a buffer grew large)."""
        self.wake_event.set()


_flusher: list[Flusher] = []


def flusher() -> Flusher:
    """Return this process's flusher thread, starting it on first use."""
    with _registry_lock:
        if not _flusher or not _flusher[0].is_alive():
            _flusher[:] = [Flusher()]
            _flusher[0].start()
            deferred.on_backlog(_wake_flusher)
        return _flusher[0]


def _wake_flusher() -> None:
    for thread in _flusher[:1]:  # no lock: called from track(); a stale thread is harmless
        thread.wake()


def open_writers() -> list[RunWriter]:
    """The writers open in this process."""
    with _registry_lock:
        return list(_writers.values())


def get_or_open(repo_dir: Path, run_hash: str, opener: Callable[[], RunWriter]) -> RunWriter:
    """Return the open writer of a run, or register the one ``opener`` builds."""
    key = (repo_dir, run_hash)
    with _registry_lock:
        writer = _writers.get(key)
        if writer is None or writer.closed:
            writer = opener()
            _writers[key] = writer
            _install_hooks()
        writer.handles += 1
        flusher()
        return writer


def find_writer(repo_dir: Path, run_hash: str) -> RunWriter | None:
    """Return the open writer of a run in this process, if any."""
    with _registry_lock:
        return _writers.get((repo_dir, run_hash))


def release(repo_dir: Path, writer: RunWriter, status: str) -> None:
    """Drop one handle; the last one closes the writer."""
    with _registry_lock:
        writer.handles -= 1
        if writer.handles > 0:
            return
        _writers.pop((repo_dir, writer.run_hash), None)
    writer.close(status)


def flush_repo(repo_dir: Path) -> None:
    """Flush every open writer of one repo now (before this process reads it)."""
    with _registry_lock:
        writers = [w for (path, _), w in _writers.items() if path == repo_dir]
    for writer in writers:
        if not writer.closed:
            writer.flush_quietly()


def close_all(status: str | None = None) -> None:
    """Close every open writer (at exit)."""
    status = status or ("failed" if _state["failed"] else "finished")
    with _registry_lock:
        writers = list(_writers.values())
        _writers.clear()
    for writer in writers:
        try:
            writer.close(status)
        except Exception as exc:
            warnings.warn(str(exc), RuntimeWarning, stacklevel=1)


def _install_hooks() -> None:
    if _state["hooks"]:
        return
    _state["hooks"] = True
    atexit.register(close_all)
    previous_hook = sys.excepthook

    def excepthook(*args: object) -> None:
        _state["failed"] = True
        previous_hook(*args)

    sys.excepthook = excepthook
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGTERM)
        if previous in (signal.SIG_DFL, None) or callable(previous):
            signal.signal(signal.SIGTERM, _sigterm_handler(previous))


def _sigterm_handler(previous: object) -> Callable:
    def handler(signum: int, frame: object) -> None:
        close_all("failed")
        if callable(previous):
            previous(signum, frame)
            return
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    return handler


def _after_fork_in_child() -> None:
    global _registry_lock
    _registry_lock = threading.RLock()  # another thread may have held it at fork time
    for writer in _writers.values():
        writer.forget()
    _writers.clear()
    _flusher.clear()
    forget_catalogs()


os.register_at_fork(after_in_child=_after_fork_in_child)
