"""``aim-core convert mlflow``: runs of an MLflow tracking store (extra ``[mlflow]``).

Read through MLflow's client API (``search_experiments`` and ``search_runs`` page by page,
``get_metric_history``). A converted run keeps MLflow's run id as its hash, so converting
again skips runs that have not changed since and adds only the new points of those that did.

- params -> ``run["params"]``, numeric strings turned back into numbers;
- tags -> ``run["mlflow"]["tags"]`` (all of them) and the run's tags as ``key=value`` (the
  user's tags, not MLflow's own ``mlflow.*``); run name and description (``mlflow.note.content``);
- metrics with their steps and timestamps (context ``{"dataset": name}`` where MLflow records
  a dataset); a metric logged without steps (every point at step 0) gets step = position;
- status (``FINISHED`` -> finished, ``FAILED``/``KILLED`` -> failed, a run that never ended ->
  crashed), start and end time.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..context import context_key
from ..errors import ConvertError
from ..repo import Repo
from ..run import check_hash
from .report import ConvertReport, ProgressFactory, convert_each, progress_bar
from .writing import (
    Point,
    SequenceData,
    finished_props,
    new_points,
    save_converted,
    stored_sequences,
    taken_hash_error,
)

SOURCE = "mlflow"
PAGE = 1000
STATUSES = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "failed"}
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")
_LEADING_ZERO = re.compile(r"[+-]?0\d")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_USERINFO = re.compile(r"//[^/@]*@")


def parse_param(text: str) -> Any:
    """An MLflow param (always a str) as the number it spells, else the str itself.

    Only a number that reads back as the same text is one: ``"007"`` stays a str (a zip
    code, a job id), as do ints outside int64 and floats that are not finite or would lose
    digits.
    """
    stripped = text.strip()
    if _INT.fullmatch(stripped):
        value = int(stripped)
        if str(value) == stripped and _INT64_MIN <= value <= _INT64_MAX:
            return value
        return text
    match = _FLOAT.fullmatch(stripped)
    if match and not _LEADING_ZERO.match(stripped) and _digits(match.group(1)) <= 17:
        value = float(stripped)
        if math.isfinite(value):
            return value
    return text


def _digits(mantissa: str) -> int:
    """How many significant digits a decimal mantissa such as ``0.00125`` has."""
    return len(mantissa.replace(".", "").lstrip("0").rstrip("0")) or 1


def metric_points(history: list[Any]) -> tuple[dict[str, list[Point]], bool]:
    """Points per dataset name ("" for none) and whether steps were made from positions."""
    ordered = sorted(history, key=lambda m: (m.step, m.timestamp))
    by_dataset: dict[str, list[Point]] = {}
    for m in ordered:
        by_dataset.setdefault(getattr(m, "dataset_name", None) or "", []).append(
            (int(m.step), float(m.value), math.nan, m.timestamp / 1000.0))
    renumbered = False
    for dataset, points in by_dataset.items():
        if len(points) > 1 and len({p[0] for p in points}) == 1:
            by_dataset[dataset] = [(i, *p[1:]) for i, p in enumerate(points)]
            renumbered = True
    return by_dataset, renumbered


def open_client(tracking_uri: str) -> Any:
    """An ``MlflowClient`` for an existing store; ConvertError when it cannot be."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise ConvertError(f"Converting MLflow runs needs the mlflow package ({exc}): "
                           "pip install 'aim-core[mlflow]'") from None
    if tracking_uri.startswith("sqlite:///"):
        path = Path(tracking_uri[len("sqlite:///"):])
        if not path.is_file():
            raise ConvertError(f"No MLflow database at {path} (from {tracking_uri}).")
    elif "://" not in tracking_uri or tracking_uri.startswith("file:"):
        path = Path(tracking_uri.removeprefix("file://").removeprefix("file:"))
        if not path.is_dir():
            raise ConvertError(f"No MLflow store folder at {path}.")
    return MlflowClient(tracking_uri=tracking_uri)


def find_experiments(client: Any, name: str | None) -> list[Any]:
    """Every active experiment, or the one called ``name`` (ConvertError if none is)."""
    if name is not None:
        found = client.get_experiment_by_name(name)
        if found is None:
            raise ConvertError(f"No MLflow experiment named {name!r}; leave out --experiment "
                               "to convert them all.")
        return [found]
    experiments, token = [], None
    while True:
        page = client.search_experiments(max_results=PAGE, page_token=token)
        experiments.extend(page)
        token = page.token
        if not token:
            return experiments


def iter_runs(client: Any, experiment_id: str) -> Iterator[Any]:
    """Every active run of one experiment, page by page."""
    token = None
    while True:
        page = client.search_runs([experiment_id], max_results=PAGE, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


class MlflowConverter:
    """Converts the runs of one tracking store into one repo."""

    def __init__(self, client: Any, tracking_uri: str, repo: Repo,
                 report: ConvertReport) -> None:
        self.client, self.repo, self.report = client, repo, report
        self.uri = _USERINFO.sub("//", tracking_uri)  # never store credentials

    def convert(self, experiment: Any, run: Any) -> None:
        """Convert one MLflow run: new, updated with what is new, or left as it is."""
        info = run.info
        run_hash = run_hash_of(info.run_id)
        entry = self.repo.catalog.get(run_hash)
        stored = (entry or {}).get("props", {}).get("source") or {}
        if entry is not None and stored.get("id") != info.run_id:
            raise taken_hash_error(run_hash, f"MLflow run {info.run_id}")
        source = {"kind": SOURCE, "id": info.run_id, "uri": self.uri,
                  "status": info.status, "end_time": info.end_time}
        if entry is not None and info.status in STATUSES and all(
                stored.get(k) == source[k] for k in ("status", "end_time")):
            self.report.unchanged()
            return
        sequences = self._sequences(info.run_id, sorted(run.data.metrics), entry)
        params = {**(entry or {}).get("params", {}), **run_params(run)}
        props = self._props(experiment, run, sequences, source)
        save_converted(self.repo, run_hash, entry, props, params, sequences, self.report)

    def _sequences(self, run_id: str, keys: list[str], entry: dict[str, Any] | None
                   ) -> list[SequenceData]:
        stored = stored_sequences(entry)
        sequences: list[SequenceData] = []
        for key in keys:
            by_dataset, renumbered = metric_points(self.client.get_metric_history(run_id, key))
            if renumbered:
                self.report.note("MLflow metrics logged without steps: step = position")
            for dataset, points in by_dataset.items():
                context = {"dataset": dataset} if dataset else {}
                old = stored.get((key, context_key(context)))
                sequences.append((key, context, "metric", new_points(points, old)))
        return sequences

    def _props(self, experiment: Any, run: Any, sequences: list[SequenceData],
               source: dict[str, Any]) -> dict[str, Any]:
        info, tags = run.info, run.data.tags
        times = [p[3] for *_, points in sequences for p in points[:1]]
        start = info.start_time / 1000.0 if info.start_time else min(times, default=0.0)
        end = info.end_time / 1000.0 if info.end_time else None
        user_tags = sorted(f"{k}={v}" if v else k for k, v in tags.items()
                           if not k.startswith("mlflow."))
        return finished_props(
            info.run_name or tags.get("mlflow.runName") or info.run_id, experiment.name,
            start, end, STATUSES.get(info.status, "crashed"), source,
            description=tags.get("mlflow.note.content", ""), tags=user_tags)


def run_params(run: Any) -> dict[str, Any]:
    """``params`` (numbers restored) and ``mlflow`` (ids, user, tags) of one MLflow run."""
    info = run.info
    return {
        "params": {key: parse_param(value) for key, value in run.data.params.items()},
        "mlflow": {"run_id": info.run_id, "experiment_id": info.experiment_id,
                   "user_id": info.user_id, "artifact_uri": info.artifact_uri,
                   "tags": dict(run.data.tags)},
    }


def run_hash_of(run_id: str) -> str:
    """MLflow's run id when it is a valid hash (it always is for MLflow's own ids)."""
    try:
        return check_hash(run_id)
    except ValueError:
        return hashlib.sha1(f"{SOURCE}\0{run_id}".encode()).hexdigest()[:24]


def convert_mlflow(tracking_uri: str, repo: Repo, *, experiment: str | None = None,
                   progress: ProgressFactory | None = None) -> ConvertReport:
    """Convert the runs of an MLflow tracking store into ``repo``."""
    client = open_client(tracking_uri)
    report = ConvertReport(SOURCE)
    converter = MlflowConverter(client, tracking_uri, repo, report)
    units = [(exp, run) for exp in find_experiments(client, experiment)
             for run in iter_runs(client, exp.experiment_id)]
    with progress_bar(progress, len(units)) as bar:
        convert_each(units, lambda unit: converter.convert(*unit),
                     lambda unit: f"MLflow run {unit[1].info.run_id}", report, bar)
    return report
