"""Critical sections of the storage code, and the process's exit paths.

Inside a critical section (a flush, a close, a catalog transaction) SIGINT and SIGTERM are
held back on the main thread and delivered when the outermost section ends, so a Ctrl-C or
a SIGTERM handler never runs in the middle of a transaction or before a closing run's last
byte is written; other code can ask whether its thread is inside one (a ``Run`` dropped
there is closed later, by the flusher, instead of nested inside another write).

The exit paths: ``atexit``, SIGTERM and an uncaught exception (including Ctrl-C) close every
open run, so buffered points reach the disk. SIGTERM closes them only when it would otherwise
kill the process at once (no handler of the script's own): a script's own SIGTERM handler
(graceful preemption) runs after a flush, with every run still open, and ``atexit`` closes
them when the script ends.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

_local = threading.local()
_HELD = (signal.SIGINT, signal.SIGTERM)
state = {"failed": False, "hooks": False}


def in_critical() -> bool:
    """True when this thread is inside a critical section."""
    return getattr(_local, "depth", 0) > 0


@contextlib.contextmanager
def critical() -> Iterator[None]:
    """Hold back SIGINT/SIGTERM (main thread) until the outermost section ends.

    A Ctrl-C that lands while the handlers are being swapped raises before the block runs,
    with everything put back: the caller then did nothing (a close is left to the exit hook).
    """
    depth = getattr(_local, "depth", 0)
    if depth or threading.current_thread() is not threading.main_thread():
        _local.depth = depth + 1
        try:
            yield
        finally:
            _local.depth = depth
        return
    received: list[int] = []
    previous: dict[int, object] = {}
    try:
        _hold(received, previous)
        _local.depth = depth + 1
        yield
    finally:
        _local.depth = depth
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in received:
            signal.raise_signal(signum)  # runs the restored handler (Ctrl-C: KeyboardInterrupt)


def _hold(received: list[int], previous: dict[int, object]) -> None:
    def record(signum: int, frame: object) -> None:
        received.append(signum)

    for signum in _HELD:
        current = signal.getsignal(signum)
        if current is None:
            continue  # installed from C: leave it alone
        try:
            signal.signal(signum, record)
        except (ValueError, OSError):
            continue
        previous[signum] = current


def install_hooks(close_all: Callable[[str | None], None], flush_all: Callable[[], None]
                  ) -> None:
    """Close every open run at exit, on SIGTERM and after an uncaught exception (once)."""
    if state["hooks"]:
        return
    state["hooks"] = True
    atexit.register(close_all, None)
    previous_hook = sys.excepthook

    def excepthook(*args: object) -> None:
        state["failed"] = True
        previous_hook(*args)

    sys.excepthook = excepthook
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGTERM)
        if previous in (signal.SIG_DFL, None):  # the signal would kill the process at once
            signal.signal(signal.SIGTERM, _close_then_die(close_all))
        elif callable(previous):  # the script handles it: its runs stay open for it
            signal.signal(signal.SIGTERM, _flush_then_chain(flush_all, previous))


def _close_then_die(close_all: Callable[[str | None], None]) -> Callable:
    def handler(signum: int, frame: object) -> None:
        close_all("failed")
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    return handler


def _flush_then_chain(flush_all: Callable[[], None], previous: Callable) -> Callable:
    def handler(signum: int, frame: object) -> None:
        flush_all()  # in case the script's handler ends the process without exit hooks
        previous(signum, frame)

    return handler


def exit_status() -> str:
    """How runs still open at exit end: ``failed`` after an uncaught exception."""
    return "failed" if state["failed"] else "finished"
