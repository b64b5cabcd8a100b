"""How the server writes runs: the storage writer, used the way a local run uses it.

Every call the server makes into :mod:`aim_core.storage` lives here, so that a change of
the writer's interface is one edit. The server's writers are not registered with this
process's flusher: only a batch (or a close) commits them, so a point is never committed
without the idempotency record of the batch that carried it.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ..repo import Repo
from ..storage.chunks import Columns
from ..storage.run_reader import RunFile
from ..storage.writer import RunWriter
from .protocol import KINDS, ObjectPoint

SESSIONS_KEY = "remote/sessions"
"""Run-file key: ``{session: [last applied batch number, points applied]}``, written in the
same transaction as the points of each batch."""
MAX_SESSIONS = 64
STORABLE_KINDS = KINDS
Sessions = dict[str, list[int]]


def run_exists(repo: Repo, run_hash: str) -> bool:
    """True when the repo has the run's file."""
    return repo.run_path(run_hash).exists()


def read_sessions(repo: Repo, run_hash: str) -> Sessions:
    """The idempotency record stored in a run's file (empty when there is none)."""
    run_file = RunFile(repo.run_path(run_hash), run_hash)
    try:
        return dict(run_file.get(SESSIONS_KEY) or {})
    finally:
        run_file.close()


def read_state(repo: Repo, run_hash: str) -> tuple[dict, dict, list[dict[str, Any]]]:
    """``(props, params, sequence infos)`` as stored, for a client that resumes the run."""
    run_file = RunFile(repo.run_path(run_hash), run_hash)
    try:
        props, params, infos = run_file.load_meta()
    finally:
        run_file.close()
    sequences = [{"name": i["name"], "context": i["context"], "kind": i.get("kind", "metric"),
                  "last_step": i.get("last_step")} for i in infos.values()]
    return props, params, sequences


def create_writer(repo: Repo, run_hash: str, props: dict[str, Any]) -> RunWriter:
    """Create the run (its file and catalog entry) and return its writer."""
    writer = RunWriter(repo.runs_dir, run_hash, repo.catalog, flush_interval=1.0)
    writer.create(props)
    return writer


def resume_writer(repo: Repo, run_hash: str) -> tuple[RunWriter, Sessions]:
    """Open an existing run for appending; also return its idempotency record."""
    writer = RunWriter(repo.runs_dir, run_hash, repo.catalog, flush_interval=1.0)
    writer.resume()
    return writer, read_sessions(repo, run_hash)


def append_points(writer: RunWriter, name: str, context: dict[str, Any], kind: str,
                  columns: Columns, objects: list[ObjectPoint] | None = None) -> None:
    """Queue a sequence's points as ``(step, value, epoch, timestamp)`` tuples (in one go:
    their steps are int64 already, so ``seq.add``'s per-point check has nothing to catch).
    An object point's value is its encoded elements, stored as they are."""
    seq = writer.new_sequence(name, context, kind)
    steps, values, epochs, times = columns
    if not len(steps):
        return
    if objects is None:
        seq.pending.extend(zip(*(column.tolist() for column in columns), strict=True))
    else:
        from ..objects.base import EncodedPoint

        encoded = [EncodedPoint(kind, is_list, elements) for is_list, elements in objects]
        seq.pending.extend(zip(steps.tolist(), encoded, epochs.tolist(), times.tolist(),
                               strict=True))
    seq.next_step = max(seq.next_step, int(steps.max()) + 1)


def set_meta(writer: RunWriter, params: dict[str, Any], props: dict[str, Any]) -> None:
    """Replace the params and merge ``props``; written by the next ``commit``."""
    writer.params = params
    writer.props = {**writer.props, **props}
    writer.meta_dirty = True  # not mark_dirty(): no flusher thread flushes the server's runs


def commit(writer: RunWriter, sessions: Sessions) -> None:
    """Write the queued points, params and props with ``sessions`` in one transaction, then
    the run's catalog entry (grouped with any other run's staged entry)."""
    writer.flush(extra={SESSIONS_KEY: _trimmed(sessions)})
    writer.catalog.commit_staged()


def close(writer: RunWriter, status: str) -> None:
    """End the run with ``status`` and release it."""
    writer.close(status)


def abandon(writer: RunWriter) -> None:
    """Let go of a run without ending it: it stays active, so it shows as ``crashed``.

    Anything queued but not committed is dropped (the client sends it again).
    """
    writer.closed = True
    try:
        with contextlib.suppress(Exception):  # the entry is rebuilt from the file if need be
            writer.catalog.commit_staged()
        writer._abandon()  # closes the file and releases the lock, leaving the run active
    finally:
        writer.catalog.release()


def applied_points(repo: Repo, run_hash: str) -> int:
    """How many points the server applied to a run, over every session it recorded."""
    return sum(points for _, points in read_sessions(repo, run_hash).values())


def _trimmed(sessions: Sessions) -> Sessions:
    if len(sessions) <= MAX_SESSIONS:
        return sessions
    return dict(list(sessions.items())[-MAX_SESSIONS:])
