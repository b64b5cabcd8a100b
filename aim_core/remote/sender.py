"""The thread that sends one run's batches: forms them each flush interval, delivers them in
order, retries with backoff, spools them while the server is away, and sends heartbeats.

Nothing here ever raises into the training thread; problems become one warning each.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING

from ..storage.exits import critical
from ..warn import warn_safely
from .protocol import encode_batch
from .transport import Rejected, Unreachable

if TYPE_CHECKING:
    from .writer import RemoteRunWriter

BACKOFF_START, BACKOFF_MAX = 0.2, 2.0


class Sender(threading.Thread):
    """Sends the batches of one :class:`RemoteRunWriter` until it is closed and drained."""

    def __init__(self, writer: RemoteRunWriter) -> None:
        super().__init__(name=f"aim-core-sender-{writer.run_hash}", daemon=True)
        self.writer, self.outbox, self.transport = writer, writer.outbox, writer.transport
        self.wake_event = threading.Event()
        self.changed = threading.Condition()
        self.force = False
        self.exited = False
        now = time.monotonic()
        self.next_form = now + writer.flush_interval
        self.retry_at = 0.0
        self.backoff = BACKOFF_START
        self.last_contact = now
        self.contacted = False
        self._warned: set[str] = set()
        self.away = False
        self._stopping = False

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> None:
        """Loop until the writer is closed and every batch is acknowledged (or ``stop()``)."""
        while True:
            self.wake_event.wait(self._seconds_to_next())
            self.wake_event.clear()
            if self._stopping:
                self._leave()
                return
            try:
                with critical():  # a run finalized on this thread is closed by the flusher
                    self._cycle()
            except Exception as exc:  # a bug here must not end the sending for good
                self._warn("bug", f"aim-core: sender of run {self.writer.run_hash}: {exc!r}")
                self.retry_at = time.monotonic() + BACKOFF_MAX
            with self.changed:
                self.changed.notify_all()
            with self.writer.lifecycle:
                if self.writer.closed and self.drained():
                    self.exited = True
                    return

    def stop(self) -> None:
        """End the thread now, its unacknowledged batches kept in the spool (sent by a later
        client); test harnesses such as Lightning's stop leftover daemon threads this way."""
        self._stopping = True
        self.wake_event.set()
        if threading.current_thread() is not self:
            self.join(timeout=5.0)

    def _leave(self) -> None:
        with contextlib.suppress(Exception):  # whatever fails, the thread must end
            self.persist()
        self.exited = True
        with self.changed:
            self.changed.notify_all()

    def wake(self, force: bool = False) -> None:
        """Form a batch now (``force``) or just re-check what is due."""
        self.force = self.force or force
        self.wake_event.set()

    def _seconds_to_next(self) -> float:
        now = time.monotonic()
        due = self.next_form - now
        if not self.outbox.empty:
            due = min(due, self.retry_at - now)
        if self._heartbeats_wanted():
            due = min(due, self.last_contact + self.writer.heartbeat_interval - now)
        return min(max(due, 0.0), 1.0)

    def _cycle(self) -> None:
        now = time.monotonic()
        if self.force or now >= self.next_form or self.writer.closed:
            self.force = False
            self.next_form = now + self.writer.flush_interval
            self.form_all()
        if time.monotonic() >= self.retry_at:
            self._deliver()
            self._heartbeat()

    # -- forming ---------------------------------------------------------------------------
    def form_all(self) -> None:
        """Turn everything buffered into numbered batches in the outbox."""
        writer = self.writer
        system = writer.system
        if system is not None:
            system.collect()  # captured terminal output becomes log lines here
        # critical(): a SIGTERM handler that flushes (on the main thread, inside a persist())
        # would form batches in the middle of this loop, out of order.
        with critical(), self.outbox.lock:
            while True:
                taken = writer.take_batch()
                if taken is None:
                    return
                ops, consumed, complete = taken
                seq = self.outbox.take_seq()
                body = encode_batch(writer.run_hash, writer.session, seq, ops,
                                    writer.heartbeat_interval)
                self.outbox.add(body, sum(n for _, n in consumed))
                for seq_state, n in consumed:
                    del seq_state.pending[:n]
                if complete:
                    return

    def drained(self) -> bool:
        """True when nothing is buffered and every batch is acknowledged."""
        with self.outbox.lock:  # not while a batch is between the buffers and the outbox
            return self.writer.nothing_buffered() and self.outbox.empty

    def drain(self, timeout: float) -> bool:
        """Send everything now; wait up to ``timeout`` seconds for the acknowledgements."""
        deadline = time.monotonic() + timeout
        self.wake(force=True)
        with self.changed:
            while not self.drained():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.exited:
                    return self.drained()
                self.changed.wait(min(remaining, 0.25))
        return True

    def persist(self) -> None:
        """Form what is buffered and move every unacknowledged batch to the spool."""
        self.form_all()
        with self.outbox.lock:
            self.outbox.spill()

    # -- delivering ------------------------------------------------------------------------
    def _deliver(self) -> None:
        while True:
            with self.outbox.lock:
                head = self.outbox.head()
            if head is None:
                return
            points, body = head
            try:
                self.transport.send_batch(self.writer.run_hash, body)
            except Unreachable as exc:
                self._unreachable(exc)
                return
            except Rejected as exc:
                self.outbox.lost += points
                self._warn(f"rejected{exc.status}",
                           f"aim-core: server {self.transport.url} refused a batch of run "
                           f"{self.writer.run_hash} ({exc.status}: {exc}); {points} points "
                           "dropped.")
            else:
                self._reached()
            with self.outbox.lock:
                self.outbox.pop()

    def _unreachable(self, exc: Unreachable) -> None:
        with self.outbox.lock:
            self.outbox.spill()
            where = self.outbox.where()
        self.retry_at = time.monotonic() + self.backoff
        self.backoff = min(self.backoff * 2, BACKOFF_MAX)
        self.away = True
        if exc.status == 401:
            self._warn("token", f"aim-core: server {self.transport.url} refused the token "
                                f"({exc}); run {self.writer.run_hash} keeps its batches in "
                                f"{where}. Set AIM_CORE_TOKEN or pass token=.")
        elif exc.status == 403:
            self._warn("refused", f"aim-core: server {self.transport.url} refused the request "
                                  f"({exc}); run {self.writer.run_hash} keeps its batches in "
                                  f"{where}.")
        else:
            self._warn("away", f"aim-core: server {self.transport.url} unreachable ({exc}); "
                               f"run {self.writer.run_hash} keeps its batches in {where} and "
                               "retries.")

    def _reached(self) -> None:
        self.transport.silent_since_close = False
        self.backoff = BACKOFF_START
        self.last_contact = time.monotonic()
        self.contacted = True
        self.away = False

    # -- heartbeats ------------------------------------------------------------------------
    def _heartbeats_wanted(self) -> bool:
        return self.contacted and not self.writer.closed and not self.away

    def _heartbeat(self) -> None:
        if not self._heartbeats_wanted() or not self.outbox.empty:
            return
        if time.monotonic() - self.last_contact < self.writer.heartbeat_interval:
            return
        try:
            self.transport.heartbeat(self.writer.run_hash, self.writer.session,
                                     self.writer.heartbeat_interval)
        except (Unreachable, Rejected):
            self.retry_at = time.monotonic() + self.backoff
            self.backoff = min(self.backoff * 2, BACKOFF_MAX)
            return
        self._reached()

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warn_safely(message, stacklevel=2)
