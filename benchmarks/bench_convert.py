"""``aim-core convert`` speed against the source library just reading the same data.

Usage: ``python benchmarks/bench_convert.py [--runs 100] [--points 10000] [--only tb|mlflow]``

TensorBoard: ``--runs`` run folders written by torch's ``SummaryWriter``, ``--points`` scalars
each (5 tags). Read: TensorBoard's ``EventAccumulator`` (store everything) loads each file
and lists every scalar. MLflow: the same runs and points in a sqlite store (``log_batch``).
Read: ``search_runs`` page by page and ``get_metric_history`` of every metric. Convert:
``convert_tensorboard`` / ``convert_mlflow`` into an empty repo; again: the same conversion
a second time (everything unchanged). Needs the ``[tensorboard]`` and ``[mlflow]`` extras.
Writing the MLflow store is the slow part (minutes at the default size: MLflow takes at most
1,000 metrics per ``log_batch``); ``--only tb`` leaves it out.
"""

from __future__ import annotations

import argparse
import glob
import logging
import tempfile
import time
from pathlib import Path

TAGS = ("train/loss", "val/loss", "train/acc", "val/acc", "lr")


def timed(action) -> tuple[float, object]:
    """Seconds taken by ``action()`` and what it returned."""
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def write_tensorboard(logdir: Path, runs: int, points: int) -> None:
    """``runs`` folders, each one event file with ``points`` scalars over ``TAGS``."""
    from torch.utils.tensorboard import SummaryWriter

    per_tag = points // len(TAGS)
    for r in range(runs):
        writer = SummaryWriter(str(logdir / f"run{r:03d}"), max_queue=10_000)
        for step in range(per_tag):
            for tag in TAGS:
                writer.add_scalar(tag, 1.0 / (step + 1), step, walltime=1e9 + step)
        writer.close()


def read_tensorboard(logdir: Path) -> int:
    """Load every event file with TensorBoard's reader; return the scalars seen."""
    from tensorboard.backend.event_processing import event_accumulator as ea

    seen = 0
    for path in sorted(glob.glob(str(logdir / "*" / "events.out.tfevents.*"))):
        acc = ea.EventAccumulator(path, size_guidance=ea.STORE_EVERYTHING_SIZE_GUIDANCE,
                                  purge_orphaned_data=False).Reload()
        for tag in acc.Tags()["scalars"]:
            seen += len(acc.Scalars(tag))
    return seen


def write_mlflow(uri: str, artifacts: Path, runs: int, points: int) -> None:
    """The same runs in an MLflow sqlite store, 1,000 metrics per ``log_batch``."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.create_experiment("bench", artifact_location=str(artifacts))
    per_tag = points // len(TAGS)
    for r in range(runs):
        run_id = client.create_run(exp, run_name=f"run{r:03d}").info.run_id
        batch = [Metric(tag.replace("/", "_"), 1.0 / (step + 1), 1_000_000 + step, step)
                 for step in range(per_tag) for tag in TAGS]
        for start in range(0, len(batch), 1000):
            client.log_batch(run_id, metrics=batch[start:start + 1000])
        client.set_terminated(run_id, "FINISHED")


def read_mlflow(uri: str) -> int:
    """Every run and every metric history through MLflow's client; return points seen."""
    from mlflow.tracking import MlflowClient

    client, seen, token = MlflowClient(uri), 0, None
    experiments = client.search_experiments()
    for exp in experiments:
        while True:
            page = client.search_runs([exp.experiment_id], max_results=1000, page_token=token)
            for run in page:
                for key in run.data.metrics:
                    seen += len(client.get_metric_history(run.info.run_id, key))
            token = page.token
            if not token:
                break
    return seen


def bench_tensorboard(folder: Path, runs: int, points: int) -> list[tuple[str, float, str]]:
    """Rows of the TensorBoard table."""
    from aim_core import Repo
    from aim_core.convert.tensorboard import convert_tensorboard

    logdir = folder / "tb"
    write_seconds, _ = timed(lambda: write_tensorboard(logdir, runs, points))
    read_seconds, seen = timed(lambda: read_tensorboard(logdir))
    repo = Repo(folder / "tb_repo", init=True)
    convert_seconds, report = timed(lambda: convert_tensorboard(logdir, repo))
    again_seconds, again = timed(lambda: convert_tensorboard(logdir, repo))
    assert report.ok and report.points == seen, report.text()
    assert again.runs_unchanged == runs
    return [("TensorBoard: SummaryWriter writes them (setup)", write_seconds, ""),
            ("TensorBoard: EventAccumulator reads them", read_seconds, f"{seen:,} scalars"),
            ("aim-core convert tensorboard", convert_seconds,
             f"{convert_seconds / read_seconds:.2f}x the read"),
            ("aim-core convert tensorboard, again (nothing new)", again_seconds, "")]


def bench_mlflow(folder: Path, runs: int, points: int) -> list[tuple[str, float, str]]:
    """Rows of the MLflow table."""
    from aim_core import Repo
    from aim_core.convert.mlflow import convert_mlflow

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    write_seconds, _ = timed(lambda: write_mlflow(uri, folder / "artifacts", runs, points))
    read_seconds, seen = timed(lambda: read_mlflow(uri))
    repo = Repo(folder / "mlflow_repo", init=True)
    convert_seconds, report = timed(lambda: convert_mlflow(uri, repo))
    again_seconds, again = timed(lambda: convert_mlflow(uri, repo))
    assert report.ok and report.points == seen, report.text()
    assert again.runs_unchanged == runs
    return [("MLflow: log_batch into a sqlite store (setup)", write_seconds, ""),
            ("MLflow: search_runs + get_metric_history", read_seconds, f"{seen:,} points"),
            ("aim-core convert mlflow", convert_seconds,
             f"{convert_seconds / read_seconds:.2f}x the read"),
            ("aim-core convert mlflow, again (nothing new)", again_seconds, "")]


def main() -> None:
    """Parse the options, run the benchmarks, print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--points", type=int, default=10_000, help="scalars per run")
    parser.add_argument("--only", choices=("tb", "mlflow"))
    args = parser.parse_args()
    if args.only != "tb":
        import mlflow  # noqa: F401  (it sets its loggers up on import; quiet them after)

        logging.getLogger("mlflow").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_convert_") as tmp:
        if args.only in (None, "tb"):
            rows += bench_tensorboard(Path(tmp), args.runs, args.points)
        if args.only in (None, "mlflow"):
            rows += bench_mlflow(Path(tmp), args.runs, args.points)
    print(f"{args.runs} runs x {args.points:,} scalars")
    width = max(len(name) for name, _, _ in rows)
    for name, seconds, note in rows:
        print(f"{name:<{width}}  {seconds:8.2f} s  {note}")


if __name__ == "__main__":
    main()
