"""What one open run records about its process, tied to the run's writer.

``SystemTracking`` holds the run's sampler subscription and its share of the terminal tee.
The writer calls ``collect()`` at the start of every flush (on the flusher thread: the
captured writes become numbered lines of the ``logs`` text sequence there, never in
``print``) and ``stop()`` when it closes, before its last flush. Two handles of one run share
one writer, so a run is sampled and captured once however often it is opened in a process.
"""

from __future__ import annotations

import threading
import time
import warnings
from typing import Any

from ..storage.exits import critical
from ..warn import warn_safely
from . import sampler
from .log_lines import Line, LineSplitter
from .terminal import TerminalCapture

LOGS = "logs"


def start_tracking(writer: Any, interval: Any, capture_logs: bool) -> SystemTracking | None:
    """Start what ``Run(system_tracking_interval=..., capture_terminal_logs=...)`` asks for;
    None when both are off. A bad interval warns and turns sampling off, as in Aim."""
    seconds = sampler.check_interval(interval)
    if seconds is None and not capture_logs:
        return None
    try:
        return SystemTracking(writer, seconds, capture_logs)
    except Exception as exc:  # e.g. no thread can be started: the run goes on without
        warnings.warn(f"aim-core could not start system tracking for run "
                      f"{getattr(writer, 'run_hash', '?')} ({exc!r}); the run is recorded "
                      "without system metrics and terminal logs.", RuntimeWarning, stacklevel=3)
        return None


class SystemTracking:
    """A run's system metrics and terminal capture; ``stop()`` ends both."""

    def __init__(self, writer: Any, interval: float | None, capture_logs: bool) -> None:
        self.writer = writer
        self._lock = threading.Lock()
        self._logs: Any = None
        self._warned = False
        self.points = 0  # points added by the sampler (counted at stop) and the capture
        self._splitter: LineSplitter | None = None
        self._capture: TerminalCapture | None = None
        if capture_logs:
            logs = writer.find_sequence(LOGS, {})
            self._splitter = LineSplitter(logs.next_step if logs is not None else 0)
            self._capture = TerminalCapture()
            self._capture.start()
            writer.wake_flusher()  # lines must reach the disk each flush, samples or not
        try:
            self._subscription = sampler.subscribe(writer, interval) if interval else None
        except BaseException:
            if self._capture is not None:
                self._capture.stop()
            raise

    def collect(self) -> None:
        """Turn what was written since the last call into ``logs`` points (flusher thread)."""
        with critical(), self._lock:  # a run finalized meanwhile is closed by the flusher
            capture, splitter = self._capture, self._splitter
            if capture is None or splitter is None:
                return
            try:
                writes = capture.drain()
                lines = splitter.feed(writes, time.time()) if writes else []
                self._append(lines + splitter.live_lines())
            except Exception as exc:  # a log line must never stop the flush of the metrics
                self._warn(exc)

    def stop(self) -> None:
        """Stop sampling and capturing; the last lines go to ``logs`` (the writer flushes next)."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            try:
                subscription.stop()
            except Exception as exc:  # the run's close must go on
                self._warn(exc)
            self.points += subscription.points
        with critical(), self._lock:  # a signal handler that flushes must not meet this lock
            capture, self._capture = self._capture, None
            splitter = self._splitter
            if capture is None or splitter is None:
                return
            try:
                capture.stop()
                self._append(splitter.feed(capture.drain(), time.time()) + splitter.finish())
            except Exception as exc:
                self._warn(exc)

    def _append(self, lines: list[Line]) -> None:
        if not lines:
            return
        from ..objects import Text

        if self._logs is None:
            self._logs = self.writer.new_sequence(LOGS, {}, kind="text")
        logs = self._logs
        for step, text, when in lines:
            logs.add(step, Text(text), timestamp=when)
        self.points += len(lines)

    def _warn(self, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            warn_safely(f"aim-core could not record the terminal output of run "
                        f"{self.writer.run_hash}: {exc!r}", stacklevel=3)
