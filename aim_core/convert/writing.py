"""Writing converted runs: a new run whole or not at all, or new points added to one.

A converted run records where it came from in its ``source`` property (``kind``, ``id`` and
what the converter needs to tell what is new), so converting again finds it by its hash,
which each converter derives from the source, and adds only what is new.

New runs are written by ``aim_core.storage.importer.write_run`` (a temporary file renamed
into place); new points go into an existing run through a ``RunWriter`` in one transaction.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from ..context import canonical_context, context_key
from ..errors import ConvertError, RunLockedError
from ..params import to_json
from ..repo import Repo
from ..storage import flusher as registry
from ..storage import importer
from ..storage.writer import RunWriter
from .report import ConvertReport

Point = tuple[int, Any, float, float]  # (step, value, epoch, timestamp)
SequenceData = tuple[str, dict[str, Any], str, list[Point]]  # (name, context, kind, points)
_NO_FLUSH = 1e9  # converters flush explicitly; the writers below are never registered
_ENDED = ("finished", "failed")  # the statuses write_run keeps as given


def finished_props(name: str, experiment: str, creation_time: float, end_time: float | None,
                   status: str, source: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The properties of a converted run, which no writer holds open."""
    return {"name": name, "description": "", "experiment": experiment, "tags": [],
            "creation_time": creation_time, "end_time": end_time, "active": False,
            "archived": False, "status": status, **extra, "source": source}


def taken_hash_error(run_hash: str, source: str) -> ConvertError:
    """The error for a run that holds ``run_hash`` but was not converted from ``source``."""
    return ConvertError(
        f"Run {run_hash} already exists in this repo but was not converted from {source}, so "
        "it was left as it is. Convert into another repo (--repo PATH), or, if that run is an "
        f"old copy you no longer need, delete it (`aim-core runs rm {run_hash}`) and convert "
        "again.")


def write_run(repo: Repo, run_hash: str, props: dict[str, Any], params: dict[str, Any],
              sequences: Iterable[SequenceData]) -> None:
    """Write a complete new run atomically (``importer.write_run``); error if it exists.

    A source run that never ended (status ``crashed``, no end time) is written whole, then
    given that status: the importer writes only ended runs.
    """
    params = to_json(params)  # errors name the param as users write it: ``params.job_id``
    importer.write_run(repo, run_hash, props, params, sequences)
    if props.get("status") not in _ENDED:
        append_run(repo, run_hash, props, params, [])


def append_run(repo: Repo, run_hash: str, props: dict[str, Any], params: dict[str, Any],
               sequences: Iterable[SequenceData]) -> None:
    """Add points to a closed run and replace its props and params, in one transaction.

    The run keeps the end time and status given in ``props`` (a writer would record now).
    """
    params = to_json(params)
    if registry.find_writer(repo.root, run_hash) is not None:
        raise RunLockedError(run_hash, "this process", os.getpid())
    before = repo.catalog.get(run_hash) or {}
    writer = RunWriter(repo.runs_dir, run_hash, repo.catalog, _NO_FLUSH)
    writer.resume()  # takes the lock; RunLockedError while another writer has the run
    final = props
    try:
        for name, context, kind, points in sequences:
            if points:
                seq = writer.new_sequence(name, canonical_context(context), kind)
                for point in points:
                    seq.add(*point)
        writer.props, writer.params = {**props, "active": True}, params
        writer.mark_dirty()
        writer.flush()
    except BaseException:
        for seq in writer.sequences:
            seq.pending.clear()
        final = before.get("props", props)
        writer.params = before.get("params", writer.params)
        writer.mark_dirty()
        raise
    finally:
        writer.props = dict(final)
        writer.close(end=(final.get("end_time"), final.get("status") or "finished"))


def save_converted(repo: Repo, run_hash: str, entry: dict[str, Any] | None,
                   props: dict[str, Any], params: dict[str, Any],
                   sequences: list[SequenceData], report: ConvertReport) -> None:
    """Write a new run or add to the stored ``entry``; count it unchanged if nothing differs."""
    written = [s for s in sequences if s[3]]
    if entry is not None and not written and (props, params) == (entry["props"],
                                                                  entry["params"]):
        report.unchanged()
        return
    if entry is None:
        write_run(repo, run_hash, props, params, sequences)
    else:
        append_run(repo, run_hash, props, params, sequences)
    report.wrote(len(written), sum(len(s[3]) for s in written), entry is None)


def new_points(points: list[Point], stored: dict[str, Any] | None) -> list[Point]:
    """The points past the last step a stored sequence already has (all when none)."""
    if not stored or stored.get("last_step") is None:
        return points
    last = stored["last_step"]
    return [p for p in points if p[0] > last]


def stored_sequences(entry: dict[str, Any] | None) -> dict[tuple[str, str], dict[str, Any]]:
    """The catalog summaries of a run's sequences, by ``(name, context key)``."""
    if not entry:
        return {}
    return {(s["name"], context_key(s["context"])): s for s in entry.get("sequences", [])}
