"""A tee of ``sys.stdout`` and ``sys.stderr`` into the capture buffers of open runs.

Capture is at the Python level, as in Aim: the ``write`` of the stream objects is wrapped, so
the console shows exactly what it showed before (same object, same ``isatty()``, encoding and
buffering) and handlers that kept a reference to the stream (``logging``, tqdm) are captured
too. Output written to the file descriptors directly (C extensions, child processes) is not.
The wrapper only appends ``(stream, text)`` to each buffer: splitting into lines (and the
time stamp, as in Aim) happens later, on the flusher thread (``log_lines``). One wrapper per
stream object serves every capturing run of the process, so no line is captured twice (also
when one wrapped stream writes into another); a run started after ``sys.stdout`` was replaced
wraps the new object too; the last ``stop()`` restores every stream exactly.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from ..storage.exits import critical

STDOUT, STDERR = 0, 1
Write = tuple[int, Any]  # (STDOUT or STDERR, what was written)

_buffers: tuple[list[Write], ...] = ()  # replaced whole, so the tee iterates without a lock
_patches: list[_Patch] = []
_lock = threading.Lock()
_inside = threading.local()  # set while our write runs: a nested one does not capture again


class _Patch:
    """Our ``write`` on one stream object, and how to take it off exactly."""

    def __init__(self, stream: Any, index: int) -> None:
        self.stream = stream
        own = vars(stream)
        self.had_own, self.previous = "write" in own, own.get("write")
        self.live = True
        self.tee = _tee(index, stream.write, self)
        stream.write = self.tee

    def undo(self) -> None:
        """Restore the stream; if someone wrapped it after us, ours becomes a pass-through."""
        self.live = False
        own = vars(self.stream)
        if own.get("write") is not self.tee:
            return
        if self.had_own:
            self.stream.write = self.previous
        else:
            del self.stream.write


def _tee(index: int, original: Callable[[Any], Any], patch: _Patch) -> Callable[[Any], Any]:
    def write(data: Any, original: Callable[[Any], Any] = original, patch: _Patch = patch,
              inside: threading.local = _inside) -> Any:
        if not patch.live or getattr(inside, "on", False):
            return original(data)  # off, or one wrapped stream writing into another
        inside.on = True
        try:
            written = original(data)  # the console first; if it raises, nothing is captured
        finally:
            inside.on = False
        item = (index, data)
        for buffer in _buffers:
            buffer.append(item)
        return written

    return write


def _patch_current() -> None:
    """Wrap ``sys.stdout``/``sys.stderr`` unless already wrapped (they may have been replaced
    since the first run started: a notebook, ``redirect_stdout``, a test's capture)."""
    for index, stream in ((STDOUT, sys.stdout), (STDERR, sys.stderr)):
        if stream is None or any(stream is p.stream for p in _patches):
            continue  # no console (pythonw), already ours, or stderr is stdout's object
        try:
            _patches.append(_Patch(stream, index))
        except Exception:  # a stream that takes no attributes (slots, a read-only proxy)
            continue


def _uninstall() -> None:
    for patch in reversed(_patches):
        try:
            patch.undo()
        except Exception:  # the stream refuses now: ours stays, as a pass-through
            patch.live = False
    _patches.clear()


class TerminalCapture:
    """One run's share of the tee: what was written since the last ``drain()``."""

    def __init__(self) -> None:
        self._buffer: list[Write] = []
        self._pid: int | None = None  # the process capturing; a forked child is not

    @property
    def active(self) -> bool:
        """True between ``start()`` and ``stop()``, in the process that started it."""
        return self._pid == os.getpid()

    def start(self) -> None:
        """Begin capturing (installs the tee if no other run has)."""
        global _buffers
        # critical(): a dropped Run that the garbage collector finalizes while this thread
        # holds the lock is closed later by the flusher, not here (its stop() takes the lock).
        with critical(), _lock:
            if self.active:
                return
            _patch_current()
            _buffers = (*_buffers, self._buffer)
            self._pid = os.getpid()

    def drain(self) -> list[Write]:
        """Take the writes captured so far, oldest first: ``(stream, text)``."""
        buffer = self._buffer
        taken = buffer[: len(buffer)]  # writes appended meanwhile stay for the next drain
        del buffer[: len(taken)]
        return taken

    def stop(self) -> None:
        """Stop capturing; the last capture to stop restores the streams exactly."""
        global _buffers
        with critical(), _lock:
            if not self.active:
                return
            self._pid = None
            _buffers = tuple(b for b in _buffers if b is not self._buffer)
            if not _buffers:
                _uninstall()


def _after_fork_in_child() -> None:
    global _buffers, _lock
    _lock = threading.Lock()
    _buffers = ()  # the child's runs are its own; the parent's buffers would only grow
    _uninstall()


os.register_at_fork(after_in_child=_after_fork_in_child)
