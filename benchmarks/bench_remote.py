"""Remote tracking, end to end until durable on the server: aim-core vs Aim 3.29.1's server.

Workloads, each run against ``aim-core server`` and against ``aim server`` (from the Aim venv,
``--aim-python``; skipped when it is missing):

1. one client process tracks ``--points`` points of one metric and closes the run;
2. ``--clients`` client processes do the same at once (aggregate points/s).

A client's time runs from ``Run()`` to the return of ``close()`` (modules are imported
before the clock starts, on both sides); aim-core's ``close()`` returns once the server has
acknowledged every batch, i.e. committed it. Afterwards the
script counts the points stored in each server's repo (Aim's after ``aim storage reindex``,
which its remote server needs before a reader sees the runs) and reports any shortfall.

Run: ``python benchmarks/bench_remote.py [--points 100000] [--clients 8]
[--aim-points N] [--skip-aim]``. ``--aim-points`` (default: ``--points``) shortens Aim's
workloads, which take minutes at its speed; rates stay comparable as points per second.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AIM_PYTHON = "/work/aimvenv/bin/python"
SERVER_MAIN = "import sys; from aim_core.cli import main; sys.exit(main())"
CLIENT = r"""
import json, sys, time
module, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
Run = __import__(module).Run
# no system sampler or terminal capture on either side: only the tracked points
options = {"system_tracking_interval": None, "capture_terminal_logs": False}
if module == "aim":
    import aim.ext.transport.client  # noqa: F401  (imports happen before the clock starts)
else:
    import aim_core.remote.run  # noqa: F401
print("ready", flush=True)
sys.stdin.readline()
start = time.time()
run = Run(repo=url, **options)
context = {"subset": "train"}
for i in range(n):
    run.track(i * 0.5, name="loss", step=i, context=context)
tracked = time.time()
run.close()
print(json.dumps({"hash": run.hash, "start": start, "tracked": tracked, "end": time.time()}),
      flush=True)
"""


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 120.0) -> None:
    """Wait until something accepts connections on ``port``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"no server on port {port}")


def run_clients(python: str, module: str, url: str, points: int, count: int,
                env: dict[str, str]) -> dict[str, float]:
    """Start ``count`` clients, let them go at once, return timings and their run hashes."""
    procs = [subprocess.Popen([python, "-c", CLIENT, module, url, str(points)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(count)]
    for proc in procs:
        line = proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"{module} client failed to start: {proc.stderr.read()}")
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=7200)
        if proc.returncode != 0:
            raise RuntimeError(f"{module} client failed: {err[-2000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
        if "Warning" in err and module == "aim_core":
            print(f"  client warning: {err.strip()[-500:]}", file=sys.stderr)
    start = min(r["start"] for r in results)
    end = max(r["end"] for r in results)
    return {"seconds": end - start, "rate": points * count / (end - start),
            "track_seconds": max(r["tracked"] - r["start"] for r in results),
            "hashes": [r["hash"] for r in results]}


def aim_core_side(points: int, clients: int, workdir: Path) -> dict[str, dict]:
    """Both workloads through ``aim-core server``."""
    port, repo = free_port(), workdir / "aim_core_repo"
    env = {**os.environ, "AIM_CORE_SPOOL_DIR": str(workdir / "spool")}
    server = subprocess.Popen([sys.executable, "-c", SERVER_MAIN, "server", "--repo",
                               str(repo), "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port)
        url = f"aim://127.0.0.1:{port}"
        single = run_clients(sys.executable, "aim_core", url, points, 1, env)
        many = run_clients(sys.executable, "aim_core", url, points, clients, env)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    from aim_core import Repo

    stored = Repo(repo)
    for result in (single, many):
        result["stored"] = sum(
            len(stored.get_run(h).get_metric("loss", {"subset": "train"}).steps)
            for h in result["hashes"])
    return {"single": single, "many": many}


def aim_side(python: str, points: int, clients: int, workdir: Path) -> dict[str, dict]:
    """Both workloads through Aim's ``aim server``."""
    port, repo = free_port(), workdir / "aim_repo"
    repo.mkdir()
    aim = [str(Path(python).with_name("aim"))]
    subprocess.run([*aim, "init", "--repo", str(repo)], check=True, capture_output=True)
    server = subprocess.Popen([*aim, "server", "--repo", str(repo), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port)
        url = f"aim://127.0.0.1:{port}"
        single = run_clients(python, "aim", url, points, 1, dict(os.environ))
        many = run_clients(python, "aim", url, points, clients, dict(os.environ))
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
    subprocess.run([*aim, "storage", "--repo", str(repo), "reindex", "-y"], check=True,
                   capture_output=True)
    for result in (single, many):
        result["stored"] = count_aim_points(python, repo, result["hashes"])
    return {"single": single, "many": many}


def count_aim_points(python: str, repo: Path, hashes: list[str]) -> int:
    """Points of metric ``loss`` stored in an Aim repo for these runs."""
    code = (
        "import sys, json\nfrom aim import Repo\nrepo = Repo.from_path(sys.argv[1])\n"
        "total = 0\nfor h in json.loads(sys.argv[2]):\n    run = repo.get_run(h)\n"
        "    for m in (run.metrics() if run else []):\n"
        "        if m.name == 'loss':\n            total += len(m.values.sparse_numpy()[0])\n"
        "print(total)\n")
    out = subprocess.run([python, "-c", code, str(repo), json.dumps(hashes)], check=True,
                         capture_output=True, text=True)
    return int(out.stdout.strip().splitlines()[-1])


def report(name: str, points: int, clients: int, ours: dict, theirs: dict | None,
           aim_points: int) -> None:
    """Print one workload's figures side by side."""
    expected = points * (1 if name == "single" else clients)
    label = ("1 client" if name == "single" else f"{clients} clients") + f" x {points:,} points"
    line = (f"{label:<30} aim-core {ours['rate']:>10,.0f} points/s "
            f"({ours['seconds']:.2f} s, tracking {ours['track_seconds']:.2f} s, stored "
            f"{ours['stored']:,}/{expected:,})")
    print(line)
    if theirs is not None:
        aim_expected = aim_points * (1 if name == "single" else clients)
        print(f"{'':<30} Aim 3.29 {theirs['rate']:>10,.0f} points/s "
              f"({theirs['seconds']:.2f} s for {aim_points:,} points per client, stored "
              f"{theirs['stored']:,}/{aim_expected:,})")
        print(f"{'':<30} aim-core is {ours['rate'] / theirs['rate']:,.0f}x faster")


def main() -> None:
    """Run both sides and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--aim-points", type=int, default=None)
    parser.add_argument("--aim-python", default=AIM_PYTHON)
    parser.add_argument("--skip-aim", action="store_true")
    args = parser.parse_args()
    aim_points = args.aim_points or args.points
    with tempfile.TemporaryDirectory(prefix="bench_remote_") as tmp:
        workdir = Path(tmp)
        ours = aim_core_side(args.points, args.clients, workdir)
        theirs = None
        if not args.skip_aim and Path(args.aim_python).exists():
            theirs = aim_side(args.aim_python, aim_points, args.clients, workdir)
        elif not args.skip_aim:
            print(f"(Aim side skipped: {args.aim_python} not found)")
        for name in ("single", "many"):
            report(name, args.points, args.clients, ours[name],
                   None if theirs is None else theirs[name], aim_points)


if __name__ == "__main__":
    main()
