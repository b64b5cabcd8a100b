"""The client-side writer of a remote run: what ``Run`` feeds, with ``RunWriter``'s interface.

``track()`` appends to ``pending`` in memory exactly as for a local run; the run's
:class:`~aim_core.remote.sender.Sender` thread turns the buffers into batches. Opening,
params, props and closing become operations in the same ordered stream as the points.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
import uuid
import warnings
from typing import Any

from ..context import context_key
from ..errors import RemoteError, RunNotFoundError
from ..storage import exits
from ..storage.chunks import POINT_BYTES, Columns, concat_columns
from ..storage.lock import HOST
from ..storage.points import latest_per_step
from ..warn import warn_safely
from .outbox import Outbox
from .protocol import EDITABLE_PROPS, METRIC, Op, Sequence, columns_of
from .sender import Sender
from .settings import env_number
from .spool import spool_root
from .transport import Transport
from .urls import server_key

MAX_BATCH_BYTES = 8 << 20  # metric points (32 bytes each) and object payloads per batch
DEFAULT_HEARTBEAT = 10.0
DEFAULT_CLOSE_TIMEOUT = 30.0
SILENT_CLOSE_TIMEOUT = 1.0  # a close after another one gave up on the same, still silent, server
FLUSH_TIMEOUT = 10.0


def heartbeat_interval() -> float:
    """Seconds between heartbeats: ``AIM_CORE_HEARTBEAT_INTERVAL`` (the server takes up to
    an hour), default 10."""
    return env_number("AIM_CORE_HEARTBEAT_INTERVAL", DEFAULT_HEARTBEAT, 0.01, 3600.0)


def close_timeout() -> float:
    """How long ``close()`` waits for the server: ``AIM_CORE_REMOTE_CLOSE_TIMEOUT``, 30 s."""
    return env_number("AIM_CORE_REMOTE_CLOSE_TIMEOUT", DEFAULT_CLOSE_TIMEOUT, 0.0, 86400.0)


class RemoteSequence:
    """One sequence of a remote run being written: buffered points and the next step."""

    __slots__ = ("name", "context", "kind", "exact", "pending", "next_step")

    def __init__(self, name: str, context: dict[str, Any], kind: str = METRIC) -> None:
        self.name, self.context, self.kind = name, context, sys.intern(kind)
        self.exact = all(isinstance(v, str) or v is None for v in context.values())
        self.pending: list[tuple[Any, Any, float, float]] = []
        self.next_step = 0

    def same_context(self, context: dict[str, Any]) -> bool:
        """For a ``context`` already ``==`` to this one: are the value types the same too?"""
        return self.exact or all(type(v) is type(context[k]) for k, v in self.context.items())

    def add(self, step: int | None, value: Any, epoch: float = math.nan,
            timestamp: float | None = None) -> None:
        """Buffer one point from a producer other than ``Run.track`` (a system sampler)."""
        if step is None:
            step = self.next_step
        if step >= self.next_step:
            self.next_step = step + 1
        self.pending.append((step, value, epoch, time.time() if timestamp is None else timestamp))


class NoCatalog:
    """What the process flusher expects of a writer's catalog: the server keeps the real one."""

    def __init__(self, url: str) -> None:
        self.path = url

    def commit_staged(self) -> None:
        """Nothing to commit here."""

    def commit_staged_quietly(self) -> None:
        """Nothing to commit here."""


class RemoteRunWriter:
    """The single writer of one remote run in this process (``Run`` handles share it)."""

    def __init__(self, transport: Transport, run_hash: str, flush_interval: float) -> None:
        self.transport, self.run_hash = transport, run_hash
        self.session = uuid.uuid4().hex[:16]
        self.flush_interval = flush_interval
        self.heartbeat_interval = heartbeat_interval()
        self.by_name: dict[str, list[RemoteSequence]] = {}
        self.sequences: list[RemoteSequence] = []
        self.props: dict[str, Any] = {}
        self.params: dict[str, Any] = {}
        self.meta_dirty = False
        self.handles = 0
        self.closed = False
        self.next_flush = math.inf  # the sender keeps time; the process flusher only wakes it
        self.catalog = NoCatalog(transport.url)
        self.lifecycle = threading.Lock()
        self._ops: list[Op] = []
        self._warned = False
        self._ops_lock = threading.Lock()
        self._new_seq_lock = threading.Lock()
        folder = spool_root() / server_key(transport.url)
        self.outbox = Outbox(folder / f"{run_hash}-{self.session}.spool")
        self.sender: Sender | None = None
        # What the run records about its process (aim_core.system.tracking.SystemTracking):
        # collected before each batch is formed, stopped before the close.
        self.system: Any = None

    def __repr__(self) -> str:
        return f"<RemoteRunWriter {self.run_hash} on {self.transport.url}>"

    # -- opening -----------------------------------------------------------------------------
    def create(self, props: dict[str, Any]) -> None:
        """Start a new run with ``props`` (sent with the first batch)."""
        self.props = props
        self._open_op("create", props=props)

    def resume(self, state: dict[str, Any]) -> None:
        """Continue a stored run from the state its server sent (props, params, sequences)."""
        self.props = {**state["props"], "active": True, "end_time": None, "status": "running"}
        self.params = state["params"]
        for info in state["sequences"]:
            seq = self._add_sequence(info["name"], info["context"], info.get("kind", "metric"))
            last = info.get("last_step")
            seq.next_step = 0 if last is None else last + 1
        self._open_op("resume")

    def revive(self) -> None:
        """Reopen this run after ``close()`` in the same process (same session, same order)."""
        self.props = {**self.props, "active": True, "end_time": None, "status": "running"}
        self._open_op("resume")

    def _open_op(self, kind: str, **args: Any) -> None:
        args.update(heartbeat=self.heartbeat_interval,
                    client={"host": HOST, "pid": os.getpid()})
        with self.lifecycle:
            self.closed = False
            with self._ops_lock:
                self._ops.append(Op(kind, args))
            if self.sender is None or self.sender.exited:
                self.sender = Sender(self)
                self.sender.start()

    # -- sequences (the interface Run uses) -----------------------------------------------
    def new_sequence(self, name: str, context: dict[str, Any],
                     kind: str = "metric") -> RemoteSequence:
        """Return the sequence ``(name, context)``, creating it once (thread-safe)."""
        with self._new_seq_lock:
            seq = self.find_sequence(name, context)
            if seq is not None:
                if seq.kind != kind:
                    raise TypeError(f"Sequence {name!r} {context} holds {seq.kind} values; "
                                    f"it cannot take {kind} values.")
                return seq
            return self._add_sequence(name, context, kind)

    def _add_sequence(self, name: str, context: dict[str, Any], kind: str) -> RemoteSequence:
        seq = RemoteSequence(name, context, kind)
        self.sequences.append(seq)
        self.by_name.setdefault(name, []).append(seq)
        return seq

    def mark_dirty(self) -> None:
        """Params or props changed: they go with the next batch."""
        self.meta_dirty = True

    def wake_flusher(self) -> None:
        """Something was buffered by another producer: the sender forms batches on its own
        clock, so there is nothing to wake."""

    def find_sequence(self, name: str, context: dict[str, Any]) -> RemoteSequence | None:
        """Return the sequence ``(name, context)`` if it exists."""
        key = context_key(context)
        for seq in self.by_name.get(name, ()):
            if context_key(seq.context) == key:
                return seq
        return None

    def read_points(self, seq: RemoteSequence) -> Columns:
        """Every point of ``seq``: sends what is buffered, then reads it from the server."""
        self.flush()
        try:
            stored = self.transport.series(self.run_hash, seq.name, seq.context)
        except RunNotFoundError:
            stored = concat_columns([])
        pending = list(seq.pending)
        parts = [stored, columns_of(pending)] if pending else [stored]
        return latest_per_step(concat_columns(parts))

    def pending_count(self) -> int:
        """How many points wait in memory."""
        return sum(len(seq.pending) for seq in self.sequences)

    def nothing_buffered(self) -> bool:
        """True when no point, op or param change waits to be formed into a batch."""
        return not self._ops and not self.meta_dirty and not any(
            seq.pending for seq in self.sequences)

    # -- batches (called on the sender thread) ------------------------------------------------
    def take_batch(self) -> tuple[list[Op], list[tuple[RemoteSequence, int]], bool] | None:
        """The next batch's ops, the points it takes per sequence, and whether it took all.

        Order: opening ops, the points, the params/props, then a close, which ends a batch
        (what follows it waits for the next batch).
        """
        with self._ops_lock:
            control, self._ops = self._ops, []
            meta, self.meta_dirty = self.meta_dirty, False
        cut = next((i for i, op in enumerate(control) if op.kind == "close"), len(control))
        head, tail = control[:cut], control[cut:cut + 1]
        rest = control[cut + 1:]
        sequences, consumed, complete = self._take_points()
        ops = list(head)
        if sequences:
            ops.append(Op("points", sequences=sequences))
        if meta:
            ops.append(Op("meta", {"params": self.params, "props": {
                k: v for k, v in self.props.items() if k in EDITABLE_PROPS}}))
        if complete:
            ops.extend(tail)
        else:
            rest = tail + rest
        if rest:
            with self._ops_lock:
                self._ops[:0] = rest
        if not ops:
            return None
        return ops, consumed, complete and not rest

    def _take_points(self) -> tuple[list[Sequence], list[tuple[RemoteSequence, int]], bool]:
        """Buffered points for one batch (at most ``MAX_BATCH_BYTES``), per sequence; and
        whether every point buffered when it started was taken."""
        sequences, consumed, budget, complete = [], [], MAX_BATCH_BYTES, True
        for seq in list(self.sequences):
            waiting = len(seq.pending)
            if not waiting:
                continue
            if budget <= 0:
                complete = False
                break
            if seq.kind == METRIC:
                n = min(waiting, max(budget // POINT_BYTES, 1))
                message, used = Sequence(seq.name, seq.context, seq.kind,
                                         columns_of(seq.pending[:n])), n * POINT_BYTES
            else:
                message, n, used = self._take_objects(seq, budget)
            if message is not None:
                sequences.append(message)
            consumed.append((seq, n))
            budget -= used
            complete = complete and n == waiting
        return sequences, consumed, complete

    def _take_objects(self, seq: RemoteSequence, budget: int
                      ) -> tuple[Sequence | None, int, int]:
        """Encode an object sequence's buffered elements (on the sender thread, as a local
        run encodes them on its flusher); an element that cannot be encoded is dropped."""
        from ..objects.base import encode_point

        points, objects, used, n = [], [], 0, 0
        for step, value, epoch, timestamp in seq.pending[: len(seq.pending)]:
            if used >= budget:
                break
            n += 1
            try:
                is_list, elements = encode_point(value)
            except Exception as exc:  # a bad element never stops the others
                self._warn_once(f"aim-core: run {self.run_hash}: an element of {seq.name!r} "
                                f"could not be encoded and was dropped ({exc!r})")
                continue
            points.append((step, math.nan, epoch, timestamp))
            objects.append((is_list, elements))
            used += sum(len(data) + 64 for _, data in elements) or 64
        if not points:
            return None, n, used
        return Sequence(seq.name, seq.context, seq.kind, columns_of(points), objects), n, used

    def _warn_once(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            warn_safely(message, stacklevel=3)

    # -- flushing and closing ---------------------------------------------------------------
    def flush(self) -> bool:
        """Send everything now and wait (bounded) for the server; never raises.

        While the server is away this only moves what is buffered into the spool.
        """
        sender = self.sender
        if sender is None:
            return True
        if sender.away:
            sender.persist()
            return False
        return sender.drain(FLUSH_TIMEOUT)

    def publish(self) -> None:
        """``Run.flush()``: send everything now and wait (bounded) for the server."""
        self.flush()

    def flush_quietly(self) -> bool:
        """A buffer grew large (the process flusher calls this): form its batches here, so
        memory stays bounded while the sender waits on a slow or silent server, and wake the
        sender. Never raises."""
        self.next_flush = math.inf  # Run.track may set it to 0 to ask for a flush now
        sender = self.sender
        if sender is None:
            return True
        try:
            sender.form_all()
        except Exception as exc:  # the sender forms them on its next cycle
            self._warn_once(f"aim-core: run {self.run_hash}: {exc!r}")
        sender.wake(force=True)
        return True

    def close(self, status: str | None = None) -> None:
        """End the run (``None``: as the process ends); wait a bounded time for the server,
        then say what is still spooled."""
        status = status or exits.exit_status()
        system, self.system = self.system, None
        if system is not None:
            system.stop()  # its last samples and log lines go with the close
        with self.lifecycle:
            if self.closed:
                return
            self.closed = True
            with self._ops_lock:
                self._ops.append(Op("close", {"status": status}))
        sender = self.sender
        if sender is None:
            return
        timeout = close_timeout()
        if sender.away and self.transport.silent_since_close:
            timeout = min(timeout, SILENT_CLOSE_TIMEOUT)
        if not sender.drain(timeout):
            self.transport.silent_since_close = sender.away
            sender.persist()
            with self.outbox.lock:
                points, where = self.outbox.points, self.outbox.where()
            warnings.warn(
                f"aim-core: run {self.run_hash}: the server at {self.transport.url} did not "
                f"acknowledge {points} points within {timeout:g} s. They are kept in {where} "
                "and sent by this process while it runs, or by the next aim-core client of "
                "this server once it has exited.", RuntimeWarning, stacklevel=2)
        lost = self.outbox.lost
        if lost:
            raise RemoteError(f"Run {self.run_hash}: {lost} points were refused by the server "
                              f"{self.transport.url} or did not fit in the spool; see the "
                              "warnings above.")

    def forget(self) -> None:
        """In a forked child: drop this writer without sending anything."""
        self.closed = True
        self.system = None
        self.sender = None
