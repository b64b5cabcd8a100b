"""``aim-core export``: metric points of chosen runs as csv, json or parquet."""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any

from ..errors import AimCoreError
from ..query import POINT_COLUMNS, context_text, metric_frame, query_metrics
from ..repo import Repo
from ..sequence import Metric
from ..spreadsheet import text_cell


def select_metrics(repo: Repo, hashes: Sequence[str] | None, query: str | None) -> list[Metric]:
    """Metrics of ``hashes`` (all of them, archived or not), narrowed by a metric ``query``."""
    if query:
        wanted = set(hashes) if hashes is not None else None
        return [m for m in query_metrics(repo, query)
                if wanted is None or m.run.hash in wanted]
    return [m for run_hash in hashes or () for m in repo.get_run(run_hash).metrics()]


def export_metrics(metrics: list[Metric], fmt: str, output: str | None, bar: Any) -> int:
    """Write every point of ``metrics`` to ``output`` (stdout when None); return the count."""
    if fmt == "parquet":
        return _export_parquet(metrics, output, bar)
    with _open_output(output) as out:
        write = _write_csv if fmt == "csv" else _write_json
        return write(metrics, out, bar)


@contextmanager
def _open_output(output: str | None) -> Iterator[IO[str]]:
    if output is None:
        yield sys.stdout
        return
    with open(output, "w", newline="", encoding="utf-8") as out:
        yield out


def _write_csv(metrics: list[Metric], out: IO[str], bar: Any) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(POINT_COLUMNS)
    count = 0
    for metric in metrics:
        run_hash, name, context = metric.run.hash, text_cell(metric.name), context_text(
            metric.context)
        epochs = ["" if math.isnan(e) else e for e in metric.epochs.tolist()]
        writer.writerows(
            (run_hash, name, context, step, value, epoch, time)
            for step, value, epoch, time in zip(metric.steps.tolist(), metric.values.tolist(),
                                                epochs, metric.timestamps.tolist(), strict=True))
        count += len(epochs)
        bar.update(1)
    return count


def _finite(values: list[float]) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in values]


def _write_json(metrics: list[Metric], out: IO[str], bar: Any) -> int:
    """A JSON array, one object per metric with its point arrays; NaN/inf become null."""
    out.write("[")
    count = 0
    for i, metric in enumerate(metrics):
        record = {
            "run_hash": metric.run.hash, "metric": metric.name,
            "context": metric.context.to_dict(), "steps": metric.steps.tolist(),
            "values": _finite(metric.values.tolist()),
            "epochs": _finite(metric.epochs.tolist()),
            "timestamps": metric.timestamps.tolist(),
        }
        out.write(("\n" if i == 0 else ",\n") + json.dumps(record, allow_nan=False))
        count += len(record["steps"])
        bar.update(1)
    out.write("\n]\n")
    return count


def _export_parquet(metrics: list[Metric], output: str | None, bar: Any) -> int:
    try:
        import pandas as pd
        import pyarrow  # noqa: F401  (pandas needs it for to_parquet)
    except ImportError as exc:
        raise AimCoreError("parquet export needs pandas and pyarrow: "
                           "pip install 'aim-core[export]'") from exc
    frames = []
    for metric in metrics:
        frames.append(metric_frame(pd, metric))
        bar.update(1)
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=list(POINT_COLUMNS))
    frame.to_parquet(output, index=False)
    return len(frame)
