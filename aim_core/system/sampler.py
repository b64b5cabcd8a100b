"""The one thread per process that samples the machine for every open run.

Each run subscribes its writer with its own interval (Aim's ``system_tracking_interval``:
0.1 s to one day, None = off). A run gets one sample as soon as it subscribes, then one per
interval; the step of a sample is its number (continuing after a resume), its timestamp the
wall time of the reading. Points go straight into the writer's buffers
(``SequenceState.add(step, value, epoch, timestamp)``); the flusher writes them with
everything else. Nothing
here ever raises into training: a failed reading is skipped.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from typing import Any, Protocol

from ..context import context_key
from ..storage.exits import critical
from ..values import NAN
from ..warn import warn_safely
from .gpu import GpuReader
from .stats import CpuMark, ProcessStats, Reading, sample_values

MIN_INTERVAL = 0.1
MAX_INTERVAL = 24 * 60 * 60.0
DEFAULT_INTERVAL = 10


class MetricTarget(Protocol):
    """What the sampler writes into: a run's writer (``storage.writer.RunWriter``)."""

    closed: bool

    def new_sequence(self, name: str, context: dict[str, Any]) -> Any:
        """The metric ``(name, context)`` (a ``SequenceState``: ``add``, ``next_step``)."""


def check_interval(interval: Any) -> float | None:
    """Return the interval in seconds, or None (off) for None or, with a warning, a bad value."""
    if interval is None:
        return None
    if (isinstance(interval, (int, float)) and not isinstance(interval, bool)
            and MIN_INTERVAL <= interval <= MAX_INTERVAL):
        return float(interval)
    warnings.warn(
        f"system_tracking_interval={interval!r} is not a number of seconds between "
        f"{MIN_INTERVAL} and {MAX_INTERVAL:.0f} (one day); system metrics are off for this run. "
        "Pass e.g. 10, or None to turn them off without this warning.",
        RuntimeWarning, stacklevel=3)
    return None


class Subscription:
    """One run's place in the sampler; ``stop()`` ends it (after its first sample)."""

    def __init__(self, target: MetricTarget, interval: float) -> None:
        self.target, self.interval = target, interval
        self.next_due = time.monotonic()
        self.samples = 0
        self.points = 0  # values added, over all samples
        self._since: CpuMark | None = None
        self._step: int | None = None
        self._sequences: dict[tuple[str, str], Any] = {}
        self._stopped = False
        self._lock = threading.Lock()

    def take(self, reading: Reading | None) -> None:
        """Append one sample from ``reading`` (None: the reading failed) and schedule the next."""
        with critical(), self._lock:  # see read()
            self._take_safely(reading)

    def _take_safely(self, reading: Reading | None) -> None:
        try:
            self._take(reading)
        except Exception as exc:  # e.g. the user made __system__cpu a text sequence
            self._stopped = True
            warn_safely(f"aim-core stopped sampling system metrics into run "
                        f"{getattr(self.target, 'run_hash', '?')}: {exc!r}", stacklevel=3)

    def _take(self, reading: Reading | None) -> None:
        if self._stopped or getattr(self.target, "closed", False):
            self._stopped = True
            return
        now = time.monotonic()
        self.next_due += self.interval
        if self.next_due <= now:  # fell behind (a suspended process): skip, don't burst
            self.next_due = now + self.interval
        if reading is None:
            return
        self._append(sample_values(reading, self._since), reading.time)
        self._since = reading.cpu
        self.samples += 1

    def _append(self, values: list[tuple[str, dict[str, Any], float]], timestamp: float) -> None:
        seqs = [self._sequence(name, context) for name, context, _ in values]
        if self._step is None:  # a resumed run continues its sample numbers
            self._step = max(seq.next_step for seq in seqs)
        step = self._step
        for seq, (_, _, value) in zip(seqs, values, strict=True):
            seq.add(step, value, NAN, timestamp)
        self.points += len(values)
        self._step = step + 1

    def _sequence(self, name: str, context: dict[str, Any]) -> Any:
        key = (name, context_key(context))
        seq = self._sequences.get(key)
        if seq is None:
            seq = self._sequences[key] = self.target.new_sequence(name, context)
        return seq

    @property
    def stopped(self) -> bool:
        """True once ``stop()`` ran or the target closed."""
        return self._stopped

    def stop(self) -> None:
        """Leave the sampler; a run stopped before its first sample takes it now."""
        reading = read() if self.samples == 0 else None
        with critical(), self._lock:
            if self.samples == 0 and reading is not None:
                self._take_safely(reading)
            self._stopped = True
        _unsubscribe(self)


class _Readings:
    """The process's psutil and NVML readers, made once, shared by every sampler thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stats: ProcessStats | None = None
        self.gpus = GpuReader()
        self.warned = False


_readings = _Readings()


def read() -> Reading | None:
    """Read the machine now; None (and one warning per process) when psutil fails."""
    readings = _readings
    # critical(): a dropped Run collected by the garbage collector while this thread holds
    # the lock is closed later by the flusher, not here (its close would wait on this lock).
    with critical(), readings.lock:
        try:
            if readings.stats is None:
                readings.stats = ProcessStats()
            return readings.stats.read(readings.gpus.read())
        except Exception as exc:  # sampling must never stop training
            if not readings.warned:
                readings.warned = True
                warn_safely(f"aim-core could not read system metrics ({exc!r}); "
                            "check that psutil is installed.", stacklevel=2)
            return None


class Sampler(threading.Thread):
    """Sleeps until the earliest subscription is due, reads once, serves every due run.

    It ends when its last subscription stops (``stop()``), so no thread outlives the runs.
    """

    def __init__(self) -> None:
        super().__init__(name="aim-core-system", daemon=True)
        self._cond = threading.Condition()
        self._subscriptions: list[Subscription] = []
        self.stopping = False

    def add(self, sub: Subscription) -> None:
        """Serve ``sub``; it is due at once."""
        with self._cond:
            self._subscriptions.append(sub)
            self._cond.notify()

    def remove(self, sub: Subscription) -> bool:
        """Forget a subscription; True when none is left."""
        with self._cond:
            if sub in self._subscriptions:
                self._subscriptions.remove(sub)
            return not self._subscriptions

    def stop(self) -> None:
        """End the thread and wait for it (a reading in progress finishes first)."""
        with self._cond:
            self.stopping = True
            self._cond.notify()
        if threading.current_thread() is not self:
            self.join(timeout=5.0)

    def run(self) -> None:
        """Loop until stopped."""
        while True:
            due = self._wait_for_due()
            if due is None:
                return
            reading = read()
            for sub in due:
                sub.take(reading)
            with self._cond:
                self._subscriptions = [s for s in self._subscriptions if not s.stopped]

    def _wait_for_due(self) -> list[Subscription] | None:
        with self._cond:
            while not self.stopping:
                now = time.monotonic()
                due = [s for s in self._subscriptions if s.next_due <= now]
                if due:
                    return due
                soonest = min((s.next_due for s in self._subscriptions), default=None)
                self._cond.wait(None if soonest is None else soonest - now)
            return None


_sampler: list[Sampler] = []
_lock = threading.Lock()


def subscribe(target: MetricTarget, interval: float) -> Subscription:
    """Sample the machine into ``target`` now and every ``interval`` seconds until stopped."""
    sub = Subscription(target, interval)
    with critical(), _lock:  # see read()
        if not _sampler or _sampler[0].stopping or not _sampler[0].is_alive():
            _sampler[:] = [Sampler()]
            _sampler[0].start()
        _sampler[0].add(sub)
    return sub


def _unsubscribe(sub: Subscription) -> None:
    with critical(), _lock:
        if _sampler and _sampler[0].remove(sub):
            _sampler.pop().stop()


def running() -> bool:
    """True while this process has a sampler thread (some run is being sampled)."""
    with _lock:
        return bool(_sampler) and _sampler[0].is_alive()


def _after_fork_in_child() -> None:
    global _lock, _readings
    _lock = threading.Lock()  # the parent's thread may have held it; threads do not survive
    _readings = _Readings()
    _sampler.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
