"""Core speed and size figures: track() cost, read speed, bytes per point, open/close time.

Run: ``python benchmarks/bench_core.py`` (prints one line per figure).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aim_core import Repo, Run

N_POINTS = 300_000
BIG = 1_000_000


def floor_loop(n: int) -> float:
    """Seconds for the bare loop: append the point tuple (with a timestamp) to a list."""
    buf, now, ctx = [], time.time, {"subset": "train"}
    start = time.perf_counter()
    for i in range(n):
        buf.append(("loss", ctx, i, 0.5, None, now()))
    return time.perf_counter() - start


def track_one(repo: Path, n: int) -> float:
    """Seconds to track ``n`` points of one scalar with a context."""
    run, ctx = Run(repo=repo), {"subset": "train"}
    start = time.perf_counter()
    for i in range(n):
        run.track(0.5, name="loss", step=i, context=ctx)
    elapsed = time.perf_counter() - start
    run.close()
    return elapsed


def track_many(repo: Path, n: int) -> float:
    """Seconds to track ``n`` points spread over 10 metrics x 3 contexts."""
    run = Run(repo=repo)
    names = [f"m{k}" for k in range(10)]
    contexts = [{"subset": s} for s in ("train", "val", "test")]
    rounds = n // 30
    start = time.perf_counter()
    for i in range(rounds):
        for ctx in contexts:
            for name in names:
                run.track(0.5, name=name, step=i, context=ctx)
    elapsed = time.perf_counter() - start
    run.close()
    return elapsed


def floor_many(n: int) -> float:
    """The bare loop for the 10 x 3 shape."""
    buf, now = [], time.time
    names = [f"m{k}" for k in range(10)]
    contexts = [{"subset": s} for s in ("train", "val", "test")]
    start = time.perf_counter()
    for i in range(n // 30):
        for ctx in contexts:
            for name in names:
                buf.append((name, ctx, i, 0.5, None, now()))
    return time.perf_counter() - start


def big_metric(repo: Path) -> tuple[str, float, int]:
    """Track a 1M-point metric; return its hash, read time and bytes on disk per point."""
    run = Run(repo=repo)
    for i in range(BIG):
        run.track(i * 0.001, name="big", step=i, epoch=i // 10_000, context={"subset": "train"})
    run.close()
    files = list((repo / ".aim_core" / "runs").glob(f"{run.hash}.sqlite*"))
    size = sum(f.stat().st_size for f in files)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        metric = Repo(repo).get_run(run.hash).get_metric("big", {"subset": "train"})
        steps, (values, epochs, times) = metric.data.numpy()
        best = min(best, time.perf_counter() - start)
        assert len(steps) == BIG
    return run.hash, best, size


def open_close(repo: Path, n: int = 50) -> float:
    """Median seconds of ``Run()`` then ``close()``."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        Run(repo=repo).close()
        times.append(time.perf_counter() - start)
    return sorted(times)[n // 2]


def import_time() -> tuple[float, bool]:
    """Best-of-5 seconds for ``import aim_core`` in a fresh interpreter, and pandas loaded?"""
    code = ("import time, sys; t = time.perf_counter(); import aim_core; "
            "print(time.perf_counter() - t, 'pandas' in sys.modules)")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.split() for _ in range(5)]
    return min(float(r[0]) for r in runs), runs[0][1] == "True"


def main() -> None:
    """Print every figure."""
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        Repo(repo, init=True)
        floor = min(floor_loop(N_POINTS) for _ in range(3))
        one = min(track_one(repo, N_POINTS) for _ in range(3))
        print(f"floor loop (append tuple):   {floor / N_POINTS * 1e6:6.3f} us/point")
        print(f"track() 1 scalar + context:  {one / N_POINTS * 1e6:6.3f} us/point, "
              f"{N_POINTS / one:,.0f} points/s, {one / floor:.1f}x floor")
        floor30 = min(floor_many(N_POINTS) for _ in range(3))
        many = min(track_many(repo, N_POINTS) for _ in range(3))
        print(f"track() 10 metrics x 3 ctx:  {many / N_POINTS * 1e6:6.3f} us/point, "
              f"{N_POINTS / many:,.0f} points/s, {many / floor30:.1f}x floor")
        _, read, size = big_metric(repo)
        print(f"read 1M-point metric:        {read * 1e3:6.1f} ms")
        print(f"disk per point (1M metric):  {size / BIG:6.1f} bytes")
        print(f"Run() open + close:          {open_close(repo) * 1e3:6.1f} ms (median)")
    seconds, pandas = import_time()
    print(f"import aim_core:             {seconds * 1e3:6.1f} ms, pandas imported: {pandas}")
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
