"""A training-like client for the remote tests: tracks numbered points to a server.

Prints JSON lines: ``{"hash": h}`` per run once opened, ``{"step": i}`` every
``--report`` points, then ``{"done": seconds_of_close, "hashes": [...]}``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

from aim_core import Run


def main() -> None:
    """Track ``--points`` points into each of ``--runs`` runs, then close them."""
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--report", type=int, default=0)
    parser.add_argument("--resume", default=None)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--tag", default="c")
    args = parser.parse_args()
    warnings.simplefilter("always")
    runs = [Run(args.resume, repo=args.url, experiment="remote-test",
                system_tracking_interval=None, capture_terminal_logs=False)
            for _ in range(args.runs)]  # exactly the points below, so they can be counted
    for index, run in enumerate(runs):
        run["hparams"] = {"client": args.tag, "index": index}
        print(json.dumps({"hash": run.hash}), flush=True)
    longest = 0.0
    for i in range(args.start, args.start + args.points):
        step_started = time.perf_counter()
        for run in runs:
            run.track(float(i), name="loss", step=i, epoch=i // 100, context={"subset": "train"})
            run.track(i * 0.5, name="acc", step=i)
        longest = max(longest, time.perf_counter() - step_started)
        if args.report and i % args.report == 0:
            print(json.dumps({"step": i}), flush=True)
        if args.sleep:
            time.sleep(args.sleep)
    started = time.perf_counter()
    for run in runs:
        run.close()
    print(json.dumps({"done": time.perf_counter() - started, "longest_step": longest,
                      "hashes": [run.hash for run in runs]}), flush=True)


if __name__ == "__main__":
    main()
