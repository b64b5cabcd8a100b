"""Runs with many sequences: flush time and what a ``kill -9`` loses, at 1,000 and 10,000.

Usage: ``python benchmarks/bench_sequences.py [--sequences 1000,10000]``. It uses only the
public API, so the same script measures an older checkout too:
``PYTHONPATH=<old checkout> python benchmarks/bench_sequences.py``.

- flush, all touched: one point in every sequence, then ``run.flush()`` (median of 5);
- flush, 10 touched: one point in 10 sequences, then ``run.flush()`` (median of 5);
- read all: a fresh reader loads every sequence of the closed run (``run.metrics()``);
- kill -9 loss: a child tracks one point per sequence, 10 steps a second (a training that
  logs every metric at every step), with a 1 s flush interval, and is killed after 6 s; the
  loss is the time between the last step it tracked and the last step stored for its first
  sequence (the promise: at most one flush interval).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from aim_core import Repo, Run

CHILD = textwrap.dedent("""
    import json, sys, time
    from aim_core import Run
    count = int(sys.argv[2])
    run = Run(repo=sys.argv[1], flush_interval=1.0, system_tracking_interval=None,
              capture_terminal_logs=False)
    names = [f"m{i}" for i in range(count)]
    print(json.dumps({"hash": run.hash}), flush=True)
    step, started = 0, time.time()
    while True:
        for name in names:
            run.track(0.5, name=name, step=step, context={"subset": "train"})
        print(json.dumps({"step": step, "t": time.time()}), flush=True)
        step += 1
        time.sleep(max(0.0, started + step / 10 - time.time()))  # 10 steps a second
""")


def flush_times(folder: Path, count: int, read: bool = True) -> dict[str, float]:
    """Median seconds of a flush touching every sequence, and one touching 10."""
    run = Run(repo=folder, flush_interval=3600, system_tracking_interval=None,
              capture_terminal_logs=False)
    names = [f"m{i}" for i in range(count)]
    for name in names:
        run.track(0.0, name=name, step=0, context={"subset": "train"})
    run.flush()
    all_touched, few_touched = [], []
    for step in range(1, 6):
        for name in names:
            run.track(0.5, name=name, step=step, context={"subset": "train"})
        started = time.perf_counter()
        run.flush()
        all_touched.append(time.perf_counter() - started)
    for step in range(6, 11):
        for name in names[:10]:
            run.track(0.5, name=name, step=step, context={"subset": "train"})
        started = time.perf_counter()
        run.flush()
        few_touched.append(time.perf_counter() - started)
    run.close()
    started = time.perf_counter()
    if read:
        metrics = list(Repo(folder).get_run(run.hash).metrics())
        points = sum(len(m.values) for m in metrics)
        assert len(metrics) == count and points == count * 6 + 50
    read_all = time.perf_counter() - started if read else float("nan")
    return {"all": statistics.median(all_touched), "ten": statistics.median(few_touched),
            "read": read_all}


def kill_loss(folder: Path, count: int, seconds: float = 6.0) -> float:
    """Seconds of tracking lost by a kill -9 after ``seconds``."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(folder), str(count)],
                            stdout=subprocess.PIPE, text=True)
    run_hash = json.loads(proc.stdout.readline())["hash"]
    seen, deadline = {}, time.time() + seconds
    while time.time() < deadline:
        line = json.loads(proc.stdout.readline())
        seen[line["step"]] = line["t"]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for line in proc.stdout.read().splitlines():
        entry = json.loads(line)
        seen[entry["step"]] = entry["t"]
    metric = Repo(folder).get_run(run_hash).get_metric("m0", {"subset": "train"})
    stored = -1 if metric is None or not len(metric.steps) else int(metric.steps[-1])
    last = max(seen)
    return seen[last] - seen.get(stored, seen[min(seen)])


def main() -> None:
    """Print one line per sequence count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", default="1000,10000")
    parser.add_argument("--no-read", action="store_true",
                        help="skip 'read all' (quadratic in versions before the seq/ keys)")
    args = parser.parse_args()
    import aim_core

    print(f"aim-core from {Path(aim_core.__file__).parent}")
    print(f"{'sequences':>10}{'flush all ms':>14}{'flush 10 ms':>13}{'read all ms':>13}"
          f"{'kill -9 loss s':>16}")
    for count in (int(c) for c in args.sequences.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            times = flush_times(Path(tmp), count, read=not args.no_read)
        with tempfile.TemporaryDirectory() as tmp:
            loss = kill_loss(Path(tmp), count)
        print(f"{count:>10}{times['all'] * 1e3:>14.1f}{times['ten'] * 1e3:>13.1f}"
              f"{times['read'] * 1e3:>13.1f}{loss:>16.2f}")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
