"""System-metric sampler cost and terminal-capture overhead.

Run: ``python benchmarks/bench_system.py [--short]`` (prints one line per figure; about
3 minutes, ``--short`` about 40 s with shorter, noisier windows).

- Sampler: a process holds one open run (``Run(system_tracking_interval=...)``) and sleeps;
  its whole CPU time over the window (the sampler thread plus the flusher writing the samples)
  is compared with the same process with ``system_tracking_interval=None`` (whose flusher
  still wakes up every second). One reading (psutil and NVML)
  is also timed alone, 200 times in a row.
- Terminal capture: a loop printing 100,000 lines to a file, with and without the tee; the
  splitting of those writes into lines (done on the flusher thread) is timed separately.
Each figure comes from a fresh interpreter; the best of three runs is kept for the loop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap

SAMPLER = textwrap.dedent("""
    import json, sys, time
    from aim_core import Run
    from aim_core.system import sampler
    repo, interval, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    run = Run(repo=repo, capture_terminal_logs=False,
              system_tracking_interval=None if interval == "off" else float(interval))
    run.track(0.0, name="loss")  # a run that has started writing, as in a training
    time.sleep(1.0)  # let imports and the first sample settle
    sub = run._writer.system._subscription if run._writer.system else None
    t0, c0, n0 = time.monotonic(), time.process_time(), sub.samples if sub else 0
    time.sleep(seconds)
    out = {"wall": time.monotonic() - t0, "cpu": time.process_time() - c0,
           "samples": (sub.samples - n0) if sub else 0}
    c0 = time.process_time()
    for _ in range(200):
        sampler.read()
    out["reading"] = (time.process_time() - c0) / 200
    run.close()
    print(json.dumps(out))
""")

PRINTER = textwrap.dedent("""
    import json, sys, time
    from aim_core.system.log_lines import LineSplitter
    from aim_core.system.terminal import TerminalCapture
    n, capture_on = int(sys.argv[1]), sys.argv[2] == "on"
    capture = TerminalCapture()
    if capture_on:
        capture.start()
    start = time.perf_counter()
    for i in range(n):
        print(f"step {i} loss {1.0 / (i + 1):.6f}")
    loop = time.perf_counter() - start
    sys.stdout.flush()
    capture.stop()
    start = time.perf_counter()
    splitter = LineSplitter()
    lines = splitter.feed(capture.drain(), time.time()) + splitter.finish()
    split = time.perf_counter() - start
    print(json.dumps({"loop": loop, "split": split, "lines": len(lines)}), file=sys.stderr)
""")


def _python(code: str, *args: str, stdout=subprocess.DEVNULL) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], stdout=stdout,
                          stderr=subprocess.PIPE, text=True, check=True)
    return json.loads(done.stderr.strip().splitlines()[-1]) if stdout is not subprocess.PIPE \
        else json.loads(done.stdout.strip().splitlines()[-1])


def sampler_cost(repo: str, interval: str, seconds: float) -> dict:
    """CPU figures of one sleeping process with sampling at ``interval`` (or "off")."""
    return _python(SAMPLER, repo, interval, str(seconds), stdout=subprocess.PIPE)


def print_loop(n: int, capture: bool, out_path: str) -> dict:
    """Best-of-3 loop time for printing ``n`` lines to a file, with or without capture."""
    best = None
    for _ in range(3):
        with open(out_path, "w") as out:
            fig = _python(PRINTER, str(n), "on" if capture else "off", stdout=out)
        if best is None or fig["loop"] < best["loop"]:
            best = fig
    return best


def main() -> None:
    """Print every figure."""
    short = "--short" in sys.argv
    windows = {"off": 10 if short else 30, "0.5": 10 if short else 30, "10": 20 if short else 60}
    with tempfile.TemporaryDirectory() as tmp:
        figs = {k: sampler_cost(tmp, k, s) for k, s in windows.items()}
        base = figs["off"]["cpu"] / figs["off"]["wall"]
        for interval in ("0.5", "10"):
            f = figs[interval]
            share = f["cpu"] / f["wall"]
            print(f"sampler every {interval:>3} s: process {share * 100:6.3f}% of a core "
                  f"(without sampling {base * 100:.3f}%, difference {(share - base) * 100:+.3f}"
                  f"%), {f['samples']} samples in {f['wall']:.0f} s")
        print(f"one reading (psutil + NVML): {figs['off']['reading'] * 1e3:.3f} ms CPU")
        n = 100_000
        path = os.path.join(tmp, "out.txt")
        plain, tee = print_loop(n, False, path), print_loop(n, True, path)
        extra = (tee["loop"] - plain["loop"]) / n * 1e6
        print(f"print 100,000 lines to a file: {plain['loop'] * 1e3:.0f} ms without capture, "
              f"{tee['loop'] * 1e3:.0f} ms with ({extra:+.2f} us/line, "
              f"{(tee['loop'] / plain['loop'] - 1) * 100:+.0f}%)")
        print(f"splitting them into lines (flusher thread): {tee['split'] * 1e3:.0f} ms "
              f"({tee['split'] / n * 1e6:.2f} us/line), {tee['lines']} lines")
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
