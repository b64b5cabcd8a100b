"""Dashboard speed, measured in headless Chromium against generated repos.

Targets (issue 7): the runs page with 1,000 runs is ready in under 1.5 s; the metrics page
for 50 runs x 100,000 points is ready in under 3 s. "Ready" is the moment the page sets
`document.body.dataset.ready = "1"` (data fetched, table or charts drawn), timed from the
start of navigation. The repos are generated once into --workdir and reused.

    python benchmarks/bench_ui.py [--workdir DIR] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import numpy as np

from aim_core import Repo, Run

CHROMIUM = os.environ.get("AIM_CORE_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run",
]
RUNS_TARGET, METRICS_TARGET = 1.5, 3.0


def make_many_runs(path: Path, n: int) -> None:
    """`n` small runs: nested params, loss/acc for train and val."""
    Repo(path, init=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        run = Run(repo=str(path), experiment=f"exp-{i % 7}")
        run.name = f"run-{i:04d}"
        run["hparams"] = {"lr": float(10 ** rng.uniform(-4, -1)), "batch_size": 2 ** (4 + i % 4),
                          "seed": i, "optimizer": {"name": ["adam", "sgd"][i % 2], "momentum": 0.9}}
        for step in range(10):
            for subset in ("train", "val"):
                run.track({"loss": 1.0 / (step + 1 + i % 5), "acc": step / 10},
                          step=step, context={"subset": subset})
        run.close()


def make_long_runs(path: Path, n: int, points: int) -> None:
    """`n` runs with one `loss` sequence of `points` points each."""
    Repo(path, init=True)
    rng = np.random.default_rng(1)
    steps = np.arange(points)
    for i in range(n):
        run = Run(repo=str(path), experiment="long")
        run.name = f"long-{i:02d}"
        run["hparams"] = {"lr": 0.001 * (1 + i % 5)}
        curve = np.exp(-steps / (points / (3 + i % 4))) + 0.05 * rng.standard_normal(points)
        for step, value in zip(steps.tolist(), curve.tolist(), strict=True):
            run.track(value, name="loss", step=step, epoch=step // 10_000,
                      context={"subset": "train"})
        run.close()


def ensure(path: Path, build, *args) -> Path:
    """Build a repo once; reuse it when its marker file exists."""
    marker = path / ".complete"
    if not marker.exists():
        started = time.perf_counter()
        build(path, *args)
        marker.write_text("ok")
        print(f"built {path} in {time.perf_counter() - started:.1f} s", flush=True)
    return path


def start_server(repo: Path) -> tuple[subprocess.Popen, str]:
    """`serve(repo, port=0)` in a child process; return it and its URL."""
    code = "import sys; from aim_core.ui.server import serve; serve(sys.argv[1], port=0)"
    proc = subprocess.Popen([sys.executable, "-c", code, str(repo)],
                            stdout=subprocess.PIPE, text=True)
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the server exited before printing its URL")
        match = re.search(r"(http://\S+/)", line)
        if match:
            return proc, match.group(1)


def time_page(page, url: str, repeat: int) -> list[float]:
    """Seconds from navigation start to the page's ready signal, `repeat` times."""
    times = []
    for _ in range(repeat):
        page.goto("about:blank")
        page.goto(url, wait_until="commit")
        page.wait_for_selector('body[data-ready="1"]', state="attached", timeout=60_000)
        times.append(page.evaluate("performance.now()") / 1000)
    return times


def measure(browser, repo: Path, path: str, repeat: int) -> tuple[float, list[float]]:
    """Cold (first) and warm load times of one page of a fresh server over `repo`."""
    proc, url = start_server(repo)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        cold = time_page(page, url + path, 1)[0]
        warm = time_page(page, url + path, repeat)
        page.close()
        return cold, warm
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def report(label: str, cold: float, warm: list[float], target: float) -> bool:
    """Print one result line; True when the median meets the target."""
    median = statistics.median(warm)
    ok = median < target
    print(f"{label}: median {median:.2f} s, max {max(warm):.2f} s, first load {cold:.2f} s "
          f"(target < {target} s) {'OK' if ok else 'SLOW'}", flush=True)
    return ok


def main() -> int:
    """Build the repos if needed, then time both pages."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "aim-core-bench-ui")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--long-runs", type=int, default=50)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    many = ensure(args.workdir / f"many-{args.runs}", make_many_runs, args.runs)
    long = ensure(args.workdir / f"long-{args.long_runs}x{args.points}", make_long_runs,
                  args.long_runs, args.points)

    from playwright.sync_api import sync_playwright

    home = tempfile.mkdtemp(prefix="bench-chromium-")
    env = {**os.environ, "XDG_CONFIG_HOME": home, "XDG_CACHE_HOME": home}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, env=env)
        query = "metrics?q=" + urllib.parse.quote('metric.name == "loss"')
        results = [
            report(f"runs page, {args.runs} runs", *measure(browser, many, "", args.repeat),
                   RUNS_TARGET),
            report(f"metrics page, {args.long_runs} runs x {args.points:,} points",
                   *measure(browser, long, query, args.repeat), METRICS_TARGET),
        ]
        browser.close()
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
