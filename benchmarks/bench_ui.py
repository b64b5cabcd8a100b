"""Dashboard speed, measured in headless Chromium against generated repos.

Targets: the runs page with 1,000 runs is ready in under 1.5 s and the metrics page for 50
runs x 100,000 points in under 3 s (issue 7); with 10,000 runs the runs page is ready in
under 1.5 s and a grouped, aggregated metric search over 500 series in under 2 s (issue 16);
the Images page with 500 thumbnails is ready in under 2 s (issue 12: its "ready" also waits
until every thumbnail inside the window has loaded from the blob endpoint).
"Ready" is the moment the page sets `document.body.dataset.ready = "1"` (data fetched,
table or charts drawn), timed from the start of navigation. The repos are generated once
into --workdir and reused.

The 10,000-run repo holds 250 runs tracked for real (loss for train and val, 1,000 points
each: the 500 series of the metric search) and 9,750 runs whose catalog entries are
written directly, each with a hard link to one real run file, as `bench_query.py` does:
tracking them all would take minutes and the pages read only the catalog for them.

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
import urllib.request
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
SWEEP_RUNS_TARGET, SWEEP_METRICS_TARGET = 1.5, 2.0
IMAGES_TARGET = 2.0
THUMBS_IN_VIEW_LOADED = """() => [...document.querySelectorAll('.thumb img')].every(img => {
  const box = img.getBoundingClientRect();
  return box.top > innerHeight || box.bottom < 0 || (img.complete && img.naturalWidth > 0);
})"""
SWEEP_QUERY = 'run.hparams.lr > 0.4 and metric.name == "loss"'
SWEEP_VIEW = ("&color=run.hparams.batch_size&style=metric.context&chart=run.hparams.optimizer"
              "&agg=mean&band=std")


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


def sweep_params(i: int, rng: np.random.Generator, real: bool) -> dict:
    """Ten params; only the real runs have lr > 0.4."""
    return {"hparams": {
        "lr": float(0.5 + rng.random() / 10 if real else rng.random() * 0.4),
        "batch_size": int(rng.choice([16, 32, 64])), "optimizer": str(rng.choice(["adam", "sgd"])),
        "dropout": float(rng.random() / 2), "layers": int(rng.integers(1, 8)), "seed": i,
        "momentum": 0.9, "warmup": int(rng.integers(0, 100)), "weight_decay": 1e-4,
        "group": f"g{i % 10}"}}


def make_sweep(path: Path, total: int, real: int, points: int) -> None:
    """`real` tracked runs (loss train/val) plus catalog-only runs up to `total`."""
    Repo(path, init=True)
    rng = np.random.default_rng(2)
    steps = np.arange(points)
    hashes = []
    for i in range(real):
        run = Run(repo=str(path), experiment="sweep")
        run.name = f"sweep-{i:03d}"
        run["hparams"] = sweep_params(i, rng, real=True)["hparams"]
        for subset, scale in (("train", 1.0), ("val", 1.2)):
            curve = scale * np.exp(-steps / (points / (2 + i % 5))) + 0.03 * rng.random(points)
            for step, value in zip(steps.tolist(), curve.tolist(), strict=True):
                run.track(value, name="loss", step=step, context={"subset": subset})
        run.close()
        hashes.append(run.hash)
    repo = Repo(path)
    template = repo.catalog.get(hashes[0])
    now = time.time()
    for i in range(real, total):
        run_hash = f"bench{i:019d}"
        repo.catalog.put(run_hash, {
            "props": {**template["props"], "name": f"run-{i:05d}", "creation_time": now - i,
                      "end_time": now - i + 60},
            "params": sweep_params(i, rng, real=False), "sequences": template["sequences"]})
        os.link(repo.run_path(hashes[0]), repo.run_path(run_hash))


def make_image_runs(path: Path, runs: int, per_step: int, steps: int) -> None:
    """`runs` runs with `per_step` 64x64 images per step for train and val, `steps` steps."""
    from aim_core import Image

    Repo(path, init=True)
    rng = np.random.default_rng(2)
    y, x = np.mgrid[0:64, 0:64]
    for i in range(runs):
        with Run(repo=str(path), experiment="images") as run:
            run.name = f"images-{i:03d}"
            run["hparams"] = {"lr": float(10 ** rng.uniform(-4, -1))}
            for step in range(steps):
                for subset in ("train", "val"):
                    batch = [np.clip(np.stack([x * 4, y * 4, (x + y) * 2], -1) + rng.normal(
                        0, 20, (64, 64, 3)), 0, 255).astype(np.uint8) for _ in range(per_step)]
                    run.track([Image(a, caption=f"{subset} #{k}") for k, a in enumerate(batch)],
                              name="samples", step=step, context={"subset": subset})


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


def time_page(page, url: str, repeat: int, until: str | None = None) -> list[float]:
    """Seconds from navigation start to the page's ready signal (and `until`, a JS
    predicate), `repeat` times."""
    times = []
    for _ in range(repeat):
        page.goto("about:blank")
        page.goto(url, wait_until="commit")
        page.wait_for_selector('body[data-ready="1"]', state="attached", timeout=60_000)
        if until:
            page.wait_for_function(until, timeout=60_000, polling="raf")
        times.append(page.evaluate("performance.now()") / 1000)
    return times


def api_time(url: str, path: str, repeat: int) -> tuple[float, float, int]:
    """Server answer of one API call: first and median seconds, and its size in bytes."""
    times, size = [], 0
    for _ in range(repeat + 1):
        started = time.perf_counter()
        with urllib.request.urlopen(url + path) as resp:
            size = len(resp.read())
        times.append(time.perf_counter() - started)
    return times[0], statistics.median(times[1:]), size


def measure(browser, repo: Path, path: str, repeat: int, until: str | None = None
            ) -> tuple[float, list[float]]:
    """Cold (first) and warm load times of one page of a fresh server over `repo`."""
    proc, url = start_server(repo)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        cold = time_page(page, url + path, 1, until)[0]
        warm = time_page(page, url + path, repeat, until)
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


def report_api(repo: Path, repeat: int) -> None:
    """Print the server's share: the API answers behind the two 10,000-run pages."""
    proc, url = start_server(repo)
    try:
        group = "&group=run.hparams.batch_size&group=metric.context&group=run.hparams.optimizer"
        calls = [
            ("GET /api/runs (first page of 100, 10,000 runs)",
             "api/runs?auto=1&limit=100&sort=creation_time&dir=desc"),
            ("GET /api/metrics (500 series, raw lines and groups)",
             "api/metrics?q=" + urllib.parse.quote(SWEEP_QUERY) + group + "&agg=mean&band=std"),
            ("GET /api/metrics (500 series, groups only: raw=0)",
             "api/metrics?q=" + urllib.parse.quote(SWEEP_QUERY) + group
             + "&agg=mean&band=std&raw=0"),
        ]
        for label, path in calls:
            first, median, size = api_time(url, path, repeat)
            print(f"{label}: first {first * 1000:.0f} ms, then median {median * 1000:.0f} ms, "
                  f"{size / 1e6:.2f} MB", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> int:
    """Build the repos if needed, then time both pages."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "aim-core-bench-ui")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--long-runs", type=int, default=50)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--sweep-runs", type=int, default=10_000)
    parser.add_argument("--sweep-series", type=int, default=500)
    parser.add_argument("--image-runs", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    many = ensure(args.workdir / f"many-{args.runs}", make_many_runs, args.runs)
    long = ensure(args.workdir / f"long-{args.long_runs}x{args.points}", make_long_runs,
                  args.long_runs, args.points)
    real = args.sweep_series // 2
    sweep = ensure(args.workdir / f"sweep-{args.sweep_runs}-{real}", make_sweep,
                   args.sweep_runs, real, 1000)
    per_step = 5  # train and val: 10 thumbnails per run at the step shown
    images = ensure(args.workdir / f"images-{args.image_runs}x{per_step}", make_image_runs,
                    args.image_runs, per_step, 10)
    report_api(sweep, args.repeat)

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
            report(f"runs page, {args.sweep_runs:,} runs", *measure(browser, sweep, "",
                                                                   args.repeat),
                   SWEEP_RUNS_TARGET),
            report(f"metrics page, {args.sweep_series} series grouped and aggregated "
                   f"({args.sweep_runs:,}-run repo)",
                   *measure(browser, sweep, "metrics?q=" + urllib.parse.quote(SWEEP_QUERY)
                            + SWEEP_VIEW, args.repeat), SWEEP_METRICS_TARGET),
        ]
        thumbs = args.image_runs * per_step * 2
        results.append(report(
            f"images page, {thumbs} thumbnails ({args.image_runs} runs x 2 contexts x "
            f"{per_step})", *measure(browser, images, "images?q=" + urllib.parse.quote(
                'images.name == "samples"'), args.repeat, THUMBS_IN_VIEW_LOADED),
            IMAGES_TARGET))
        browser.close()
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
