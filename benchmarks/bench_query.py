"""AimQL speed: ``query_runs`` and ``aim-core runs ls`` over 10,000 runs, ``query_metrics`` reads.

Usage: ``python benchmarks/bench_query.py [--runs 10000] [--repo PATH]``

The repo holds ``--runs`` runs of 10 params and 3 sequences each (loss train/val, acc val).
200 of them (``hparams.lr > 0.4``) are real runs tracked with ``Run.track``, 1,000 points
per sequence. Creating the other 9,800 as real runs would take minutes, so the setup writes
their catalog entries directly (the same JSON a finished run leaves) and gives each a hard
link to one real run file of the same shape; those files are never opened, since the
queries read only the catalog and the 200 matching runs.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from aim_core import Repo, Run
from aim_core.storage.catalog import entry_text

MATCHING = 200
POINTS = 1_000
SEQUENCES = (("loss", {"subset": "train"}), ("loss", {"subset": "val"}),
             ("acc", {"subset": "val"}))


def params_for(i: int, rng: random.Random, matching: bool) -> dict:
    """10 params; only matching runs have lr > 0.4."""
    return {"hparams": {
        "lr": 0.5 + rng.random() / 10 if matching else rng.random() * 0.4,
        "batch_size": rng.choice([16, 32, 64]), "optimizer": rng.choice(["adam", "sgd"]),
        "dropout": rng.random() / 2, "layers": rng.randint(1, 8), "seed": i,
        "momentum": 0.9, "warmup": rng.randint(0, 100), "weight_decay": 1e-4,
        "group": f"g{i % 10}",
    }}


def track_run(path: Path, i: int, rng: random.Random, points: int) -> str:
    """One real run with 3 sequences of ``points`` points."""
    run = Run(repo=path, experiment="bench")
    run["hparams"] = params_for(i, rng, matching=True)["hparams"]
    steps = np.arange(points)
    curve = 1.0 / (1.0 + steps)
    for step in range(points):
        for name, context in SEQUENCES:
            run.track(float(curve[step]), name=name, step=step, context=context)
    run.close()
    return run.hash


def build_repo(path: Path, total: int) -> None:
    """200 real runs plus catalog-only entries (see the module docstring)."""
    rng = random.Random(0)
    started = time.perf_counter()
    real = [track_run(path, i, rng, POINTS) for i in range(MATCHING)]
    repo = Repo(path)
    template_hash = real[0]
    template = repo.catalog.get(template_hash)
    template_file = repo.run_path(template_hash)
    now = time.time()
    for i in range(MATCHING, total):
        run_hash = f"bench{i:019d}"
        entry = {
            "props": {**template["props"], "name": f"run {i}", "creation_time": now - i,
                      "end_time": now - i + 60},
            "params": params_for(i, rng, matching=False),
            "sequences": template["sequences"],
        }
        repo.catalog.stage(run_hash, entry_text(entry))  # committed at once below
        os.link(template_file, repo.run_path(run_hash))
    repo.catalog.commit_staged()
    print(f"setup: {total:,} runs in {time.perf_counter() - started:.1f} s "
          f"({MATCHING} tracked for real)")


def timed(function, repeat: int = 5) -> tuple[float, float, float, object]:
    """(first, median wall time, least CPU time) in ms, and the last result."""
    times, cpu, result = [], [], None
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        result = function()
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
    return times[0], statistics.median(times), min(cpu), result


def read_metrics(repo: Repo) -> int:
    """query_metrics into numpy: the matching runs' two loss sequences."""
    total = 0
    for metric in repo.query_metrics('run.hparams.lr > 0.4 and metric.name == "loss"'):
        total += metric.values.size + metric.steps.size
    return total


def ls_command(path: Path, runs: int) -> float:
    """Wall time of ``aim-core runs ls`` in a fresh process, in ms."""
    script = Path(sys.executable).parent / "aim-core"
    started = time.perf_counter()
    done = subprocess.run([str(script), "runs", "ls", "--repo", str(path)],
                          capture_output=True, text=True, check=True)
    elapsed = (time.perf_counter() - started) * 1000
    assert done.stdout.count("\n") >= runs, "runs ls listed too few runs"
    return elapsed


def report(label: str, first: float, median: float, cpu: float | None,
           limit: float | None) -> None:
    """One result line with its target (judged on the median wall time)."""
    verdict = "" if limit is None else (
        f"(target < {limit:.0f} ms) " + ("ok" if median < limit else "SLOW"))
    cpu_text = f"cpu {cpu:7.1f} ms" if cpu is not None else " " * 14
    print(f"{label:<60} first {first:7.1f}  median {median:7.1f}  {cpu_text}  {verdict}")


def main() -> None:
    """Build (or reuse) the repo and print the three measurements."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repo", type=Path, help="reuse or create the repo here")
    args = parser.parse_args()
    path = args.repo or Path(tempfile.mkdtemp(prefix="aimql-bench-"))
    if not (path / ".aim_core").exists():
        build_repo(path, args.runs)
    repo = Repo(path)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; times in ms")

    first, median, cpu, found = timed(lambda: repo.query_runs("run.hparams.lr > 0.4"))
    assert len(found) == MATCHING, len(found)
    report(f"query_runs('run.hparams.lr > 0.4') over {args.runs:,} runs", first, median, cpu,
           100)

    first, median, cpu, found = timed(lambda: repo.query_runs('run.hparams.group == "g3"'))
    report(f"  same, 'run.hparams.group == \"g3\"' ({len(found):,} matches)", first, median,
           cpu, None)

    ls_times = [ls_command(path, args.runs) for _ in range(3)]
    report(f"aim-core runs ls ({args.runs:,} rows, new process)", ls_times[0],
           statistics.median(ls_times), None, 1000)

    first, median, cpu, points = timed(lambda: read_metrics(Repo(path)))
    assert points == MATCHING * 2 * POINTS * 2, points
    report(f"query_metrics -> numpy ({MATCHING} runs x 2 metrics x {POINTS:,} points)",
           first, median, cpu, 300)
    first, median, cpu, _ = timed(lambda: Repo(path).query_metrics(
        'run.hparams.lr > 0.4 and metric.name == "loss"'))
    report("  of which the query itself (no points read)", first, median, cpu, None)
    print(f"repo: {path}")


if __name__ == "__main__":
    main()
