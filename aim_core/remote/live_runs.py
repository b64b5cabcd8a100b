"""The runs the server is writing: one storage writer per run, held for one client session.

A session is one client process's stream of batches for one run. The server applies a
session's batches in order, each in one transaction that also records the batch number, so
a batch sent twice is applied once. A session that sends nothing (no batch, no heartbeat)
for about three of its heartbeat intervals is let go: the run stays active without a
writer, which readers show as ``crashed``, and any client may resume it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import RunLockedError, RunNotFoundError
from ..repo import Repo
from ..storage.writer import RunWriter, default_props
from . import server_storage as storage
from .protocol import Batch, BatchError, Op
from .server_storage import Sessions

MISSED_BEATS = 3
GRACE_SECONDS = 1.0


def last_seq(sessions: Sessions, session: str) -> int:
    """The number of the last batch of ``session`` applied to the run (0: none)."""
    return sessions.get(session, (0, 0))[0]


class SessionConflict(Exception):
    """Another session (or a local process) holds the run, or the batch cannot start it."""


@dataclass
class LiveRun:
    """A run held open for one session."""

    writer: RunWriter
    session: str
    heartbeat: float
    client: dict[str, Any]
    sessions: Sessions
    last_seen: float = field(default_factory=time.monotonic)

    def expired(self, now: float) -> bool:
        """True once the session missed about three heartbeats."""
        return now - self.last_seen > MISSED_BEATS * self.heartbeat + GRACE_SECONDS

    def holder(self) -> str:
        """Who holds the run, for messages."""
        return f"pid {self.client.get('pid', -1)} on host {self.client.get('host', '?')!r}"


class LiveRuns:
    """Every run the server holds, the per-run locks, and the reaper of silent sessions."""

    def __init__(self, repo: Repo, reap_every: float = 0.5) -> None:
        self.repo = repo
        self._runs: dict[str, LiveRun] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._table_lock = threading.Lock()
        self._stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap_loop, args=(reap_every,),
                                        name="aim-core-reaper", daemon=True)

    def start(self) -> None:
        """Start the reaper thread."""
        self._reaper.start()

    def _lock(self, run_hash: str) -> threading.Lock:
        with self._table_lock:
            return self._locks.setdefault(run_hash, threading.Lock())

    # -- batches ---------------------------------------------------------------------------
    def apply(self, batch: Batch) -> dict[str, Any]:
        """Apply a decoded batch once; answer after it is durable."""
        for op in batch.ops:
            for seq in op.sequences:
                if seq.kind not in storage.STORABLE_KINDS:
                    raise BatchError(f"this server cannot store {seq.kind} sequences "
                                     f"({seq.name!r}); upgrade aim-core on the server")
        with self._lock(batch.run):
            live = self._runs.get(batch.run)
            if (live is None or live.session != batch.session) and self._applied_before(batch):
                return {"applied": False, "seq": batch.seq}
            live = self._attach(batch.run, batch.session, batch.ops[0] if batch.ops else None)
            live.last_seen = time.monotonic()
            live.heartbeat = batch.heartbeat or live.heartbeat
            if batch.seq <= last_seq(live.sessions, batch.session):
                return {"applied": False, "seq": batch.seq}
            try:
                self._apply_ops(live, batch)
            except BaseException:
                self._let_go(batch.run)  # forget half-applied state; the file has none of it
                raise
            return {"applied": True, "seq": batch.seq}

    def _applied_before(self, batch: Batch) -> bool:
        """True for a resent batch the file already records (it is not applied again).

        A resent close whose run is still active is completed: the server may have died
        between committing the batch and ending the run.
        """
        if not storage.run_exists(self.repo, batch.run):
            return False
        if batch.seq > last_seq(storage.read_sessions(self.repo, batch.run), batch.session):
            return False
        close = next((op for op in batch.ops if op.kind == "close"), None)
        if close is not None and storage.read_state(self.repo, batch.run)[0].get("active"):
            live = self._attach(batch.run, batch.session, None)
            with self._table_lock:
                self._runs.pop(batch.run, None)
            storage.close(live.writer, close.args["status"])
        return True

    def _apply_ops(self, live: LiveRun, batch: Batch) -> None:
        writer, close_status = live.writer, None
        for op in batch.ops:
            if op.kind == "points":
                for seq in op.sequences:
                    storage.append_points(writer, seq.name, seq.context, seq.kind, seq.columns,
                                          seq.objects)
            elif op.kind == "meta":
                storage.set_meta(writer, op.args["params"], op.args["props"])
            elif op.kind == "close":
                close_status = op.args["status"]
            elif op.kind in ("create", "resume"):
                live.heartbeat = op.args["heartbeat"]
                live.client = op.args["client"] or live.client
        applied = live.sessions.pop(batch.session, [0, 0])[1]
        live.sessions[batch.session] = [batch.seq, applied + batch.points]
        storage.commit(writer, live.sessions)
        if close_status is not None:
            with self._table_lock:
                self._runs.pop(batch.run, None)
            storage.close(writer, close_status)

    # -- sessions --------------------------------------------------------------------------
    def _attach(self, run_hash: str, session: str, first: Op | None) -> LiveRun:
        """The live run of ``session``, opening the run's writer for it when needed."""
        live = self._runs.get(run_hash)
        if live is not None and live.session == session:
            return live
        if live is not None and not live.expired(time.monotonic()):
            raise SessionConflict(f"Run {run_hash} is being written by {live.holder()}; "
                                  "close it there first or start a new run.")
        if live is not None:
            self._let_go(run_hash)
        heartbeat, client = 10.0, {}
        if first is not None and first.kind in ("create", "resume"):
            heartbeat, client = first.args["heartbeat"], first.args["client"]
        writer, sessions = self._open(run_hash, session, first)
        live = LiveRun(writer, session, heartbeat, client, sessions)
        with self._table_lock:
            self._runs[run_hash] = live
        return live

    def _open(self, run_hash: str, session: str, first: Op | None
              ) -> tuple[RunWriter, Sessions]:
        if not storage.run_exists(self.repo, run_hash):
            if first is None or first.kind != "create":
                raise RunNotFoundError(f"No run {run_hash!r} on this server; its client must "
                                       "create it first.")
            props = {**default_props(run_hash, None), **first.args["props"],
                     "active": True, "end_time": None, "status": "running"}
            return storage.create_writer(self.repo, run_hash, props), {}
        try:
            writer, sessions = storage.resume_writer(self.repo, run_hash)
        except RunLockedError as exc:
            raise SessionConflict(str(exc)) from None
        kind = first.kind if first is not None else None
        # A session the file knows continues; a new one must ask to resume. A create for an
        # existing run is a retry of a first batch whose commit the server did not finish.
        if session in sessions or kind == "resume" or (kind == "create" and not sessions):
            return writer, sessions
        storage.abandon(writer)
        raise SessionConflict(f"Run {run_hash} already exists and this session did not open "
                              "it; resume it by its hash.")

    def _let_go(self, run_hash: str) -> None:
        with self._table_lock:
            live = self._runs.pop(run_hash, None)
        if live is not None:
            storage.abandon(live.writer)

    def heartbeat(self, run_hash: str, session: str, interval: float) -> None:
        """Note that ``session`` is alive; re-attach it after a server restart."""
        with self._lock(run_hash):
            live = self._runs.get(run_hash)
            if live is not None and live.session == session:
                live.last_seen, live.heartbeat = time.monotonic(), interval
                return
            if not storage.run_exists(self.repo, run_hash):
                raise RunNotFoundError(f"No run {run_hash!r} on this server.")
            props, _, _ = storage.read_state(self.repo, run_hash)
            if session not in storage.read_sessions(self.repo, run_hash) or not props.get(
                    "active"):
                raise SessionConflict(f"Session {session} does not hold run {run_hash}.")
            live = self._attach(run_hash, session, None)
            live.last_seen, live.heartbeat = time.monotonic(), interval

    def holds(self, run_hash: str) -> bool:
        """True while the server has a writer open on the run (expired or not)."""
        return run_hash in self._runs

    def holder(self, run_hash: str) -> LiveRun | None:
        """The live session holding a run, if any and not expired."""
        live = self._runs.get(run_hash)
        if live is None or live.expired(time.monotonic()):
            return None
        return live

    # -- reaping and shutdown ----------------------------------------------------------------
    def _reap_loop(self, every: float) -> None:
        while not self._stop.wait(every):
            self.reap()

    def reap(self) -> list[str]:
        """Let go of every session that stopped sending; return their runs."""
        now = time.monotonic()
        with self._table_lock:
            silent = [h for h, live in self._runs.items() if live.expired(now)]
        reaped = []
        for run_hash in silent:
            lock = self._lock(run_hash)
            if not lock.acquire(blocking=False):
                continue  # a batch is being applied: the session is alive
            try:
                live = self._runs.get(run_hash)
                if live is not None and live.expired(time.monotonic()):
                    self._let_go(run_hash)
                    reaped.append(run_hash)
            finally:
                lock.release()
        return reaped

    def shutdown(self) -> None:
        """Stop reaping and let go of every run (clients re-attach to the next server)."""
        self._stop.set()
        with self._table_lock:
            hashes = list(self._runs)
        for run_hash in hashes:
            with self._lock(run_hash):
                self._let_go(run_hash)
