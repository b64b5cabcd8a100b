"""Sweeps of short runs: aim-core, TensorBoard's SummaryWriter and a naive sqlitedict store.

Usage: ``python benchmarks/bench_sweep.py [--runs 200] [--points 1000] [--repeat 3]``

Each store writes the same workload in a child process of its own: ``--runs`` runs, each with
5 params and 2 metrics of ``--points`` points, closed before the next starts (a sweep). For
each store the table shows the best creation time of ``--repeat`` repeats, the bytes and
files it left on disk, and its syncs per run (``fsync``/``fdatasync``/``sync_file_range``/
``syncfs``, counted with ``strace -f`` on one extra repeat; ``-`` when strace is missing).
Then aim-core alone: ``Run()`` open+close, closing a 300,000-point run (one metric, of which
the flusher wrote the first 262,144 before ``close()``; and 3 x 100,000 points all still
buffered), bytes per point of a 100,000-point metric.

- TensorBoard: ``torch.utils.tensorboard.SummaryWriter`` (extra ``[tensorboard]`` and torch),
  one log dir per run; params as one ``add_text`` of their JSON (TensorBoard has no params
  store; ``add_hparams`` would add a second event file per run).
- naive sqlitedict: one ``SqliteDict`` file per run, params under one key and each point
  ``(value, timestamp)`` under ``<metric>/<step>`` as it is tracked (sqlitedict's defaults:
  pickle, its writer thread), one commit at the end of the run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STORES = ("aim-core", "tensorboard", "sqlitedict")
SYNC_CALLS = "fsync,fdatasync,sync_file_range,syncfs"

WORKLOAD = r'''
import json, sys, time
store, folder, runs, points = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def params(i):
    return {"lr": 0.001 * (i + 1), "batch_size": 32, "optimizer": "adam", "dropout": 0.1,
            "seed": i}

if store == "aim-core":
    from aim_core import Repo, Run
    Repo(folder, init=True)
    def one(i):
        run = Run(repo=folder)
        for key, value in params(i).items():
            run["hparams", key] = value
        for step in range(points):
            run.track(1.0 / (step + 1), name="loss", step=step)
            run.track(step / points, name="acc", step=step)
        run.close()
elif store == "tensorboard":
    from torch.utils.tensorboard import SummaryWriter
    def one(i):
        writer = SummaryWriter(log_dir=f"{folder}/run{i}")
        writer.add_text("hparams", json.dumps(params(i)))
        for step in range(points):
            writer.add_scalar("loss", 1.0 / (step + 1), step)
            writer.add_scalar("acc", step / points, step)
        writer.close()
else:
    from sqlitedict import SqliteDict
    def one(i):
        db = SqliteDict(f"{folder}/run{i}.sqlite")
        db["params"] = params(i)
        for step in range(points):
            db[f"loss/{step}"] = (1.0 / (step + 1), time.time())
            db[f"acc/{step}"] = (step / points, time.time())
        db.commit()
        db.close()

started = time.perf_counter()
for i in range(runs):
    one(i)
print(json.dumps({"seconds": time.perf_counter() - started}))
'''


def run_workload(store: str, runs: int, points: int, strace: bool = False
                 ) -> tuple[float, int, int, tuple[int, int] | None]:
    """(seconds, bytes, files, (syncs, syncs of run files)) of one sweep in a child process."""
    folder = Path(tempfile.mkdtemp(prefix=f"sweep-{store}-"))
    try:
        command = [sys.executable, "-c", WORKLOAD, store, str(folder), str(runs), str(points)]
        trace = folder.with_suffix(".strace")
        if strace:
            # seccomp-bpf: only the sync calls stop the process, so tracing costs next to no time
            command = ["strace", "-f", "--seccomp-bpf", "-y", "-o", str(trace),
                       "-e", f"trace={SYNC_CALLS}", *command]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        seconds = float(out.strip().splitlines()[-1].split(":")[1].strip(" }"))
        size, files = _disk_usage(folder)
        syncs = _count_syncs(trace) if strace else None
        return seconds, size, files, syncs
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        folder.with_suffix(".strace").unlink(missing_ok=True)


def _disk_usage(folder: Path) -> tuple[int, int]:
    size = files = 0
    for root, _, names in os.walk(folder):
        for name in names:
            size += os.stat(os.path.join(root, name)).st_blocks * 512
            files += 1
    return size, files


def _count_syncs(trace: Path) -> tuple[int, int]:
    """(all sync calls, those on a run's own file) in an ``strace -f -y`` log."""
    total = on_runs = 0
    for line in trace.read_text().splitlines():
        call = line.split(maxsplit=1)[-1]
        if "resumed>" in call or not call.startswith(tuple(f"{c}(" for c in SYNC_CALLS.split(","))):
            continue
        total += 1
        on_runs += f"{os.sep}runs{os.sep}" in call  # not the catalog, the repo folder, ...
    return total, on_runs


def aim_core_figures() -> dict[str, float]:
    """Run() open+close, close of 300k buffered points, bytes per point of a 100k metric."""
    from aim_core import Repo, Run

    folder = Path(tempfile.mkdtemp(prefix="sweep-aim-"))
    try:
        Repo(folder, init=True)
        Run(repo=folder).close()
        times = []
        for _ in range(50):
            started = time.perf_counter()
            Run(repo=folder).close()
            times.append(time.perf_counter() - started)
        run = Run(repo=folder, flush_interval=3600)
        for step in range(300_000):
            run.track(1.0 / (step + 1), name="loss", step=step, epoch=step // 10_000)
        started = time.perf_counter()
        run.close()
        close_300k = time.perf_counter() - started
        run = Run(repo=folder, flush_interval=3600)  # 3 x 100,000: all still buffered at close
        for step in range(100_000):
            for name in ("loss", "acc", "lr"):
                run.track(1.0 / (step + 1), name=name, step=step, epoch=step // 10_000)
        started = time.perf_counter()
        run.close()
        close_buffered = time.perf_counter() - started
        run = Run(repo=folder)
        for step in range(100_000):
            run.track(1.0 / (step + 1), name="loss", step=step, epoch=step // 10_000)
        run.close()
        size = (folder / ".aim_core" / "runs" / f"{run.hash}.sqlite").stat().st_size
        return {"open_close_ms": statistics.median(times) * 1e3, "close_300k_s": close_300k,
                "close_buffered_s": close_buffered, "bytes_per_point_100k": size / 100_000}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    """Run every store, print the table and aim-core's own figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stores", default=",".join(STORES))
    args = parser.parse_args()
    has_strace = shutil.which("strace") is not None
    rows = []
    for store in args.stores.split(","):
        results = [run_workload(store, args.runs, args.points) for _ in range(args.repeat)]
        seconds = sorted(r[0] for r in results)
        _, size, files, _ = results[-1]
        syncs = run_workload(store, args.runs, args.points, strace=True)[3] if has_strace else None
        rows.append((store, seconds, size, files, syncs))
    print(f"{args.runs} runs x 5 params x 2 metrics x {args.points:,} points, each closed "
          f"(best of {args.repeat}; all repeats in brackets)")
    print(f"{'store':<13}{'create s':>10}{'MB on disk':>12}{'files':>7}{'syncs/run':>11}  repeats")
    for store, seconds, size, files, syncs in rows:
        per_run = "-" if syncs is None else f"{syncs[0] / args.runs:.2f}"
        print(f"{store:<13}{seconds[0]:>10.2f}{size / 1e6:>12.1f}{files:>7}{per_run:>11}  "
              f"[{', '.join(f'{s:.2f}' for s in seconds)}]")
    for store, _, _, _, syncs in rows:
        if store == "aim-core" and syncs is not None:
            print(f"aim-core syncs: {syncs[0]} = {syncs[1]} of run files "
                  f"({syncs[1] / args.runs:.2f} per run) + {syncs[0] - syncs[1]} per process "
                  "(creating the repo, the catalog's WAL)")
    figures = aim_core_figures()
    print(f"aim-core Run() open+close (median of 50): {figures['open_close_ms']:.1f} ms")
    print(f"aim-core close of a 300,000-point run: {figures['close_300k_s']:.3f} s "
          f"(all 300,000 still buffered, 3 metrics: {figures['close_buffered_s']:.3f} s)")
    print(f"aim-core bytes per point, 100,000-point metric: "
          f"{figures['bytes_per_point_100k']:.1f}")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, "
          f"python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
