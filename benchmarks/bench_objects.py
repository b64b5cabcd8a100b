"""Image sequences side by side with Aim: track() cost, 10,000 images end to end, disk, reads.

Run: ``python benchmarks/bench_objects.py [--aim-python /work/aimvenv/bin/python] [-n 10000]``.
Each side runs in its own fresh process on the same images (64x64 RGB uint8: smooth colour
fields plus noise, 100 distinct ones cycled). Aim runs only where its interpreter exists.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

DEFAULT_AIM_PYTHON = "/work/aimvenv/bin/python"
BIG = 200  # 256x256 noise images, each above the blob threshold (one synced file each)

# Shared by both sides: the images, and the size of a folder on disk.
COMMON = textwrap.dedent('''
    import json, os, sys, time
    import numpy as np

    def images(k=100, size=64):
        rng = np.random.default_rng(0)
        y, x = np.mgrid[0:size, 0:size]
        out = []
        for i in range(k):
            base = np.stack([np.sin(x / (5 + i % 7)) * 100 + 120,
                             np.cos(y / (4 + i % 5)) * 100 + 120, (x + y) * 1.5 + i], -1)
            out.append(np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8))
        return out

    def disk_bytes(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path)
                   for f in fs if not os.path.islink(os.path.join(d, f)))
''')

AIM_CORE_SIDE = COMMON + textwrap.dedent('''
    from aim_core import Image, Repo, Run

    def main(repo, n):
        imgs = images()
        run = Run(repo=repo)
        cost = []
        clock = time.perf_counter
        for i in range(2000):  # track() on the caller's thread, one call at a time
            start = clock()
            run.track(Image(imgs[i % 100], caption=f"sample {i}"), name="warm", step=i)
            cost.append(clock() - start)
        run.close()
        start = clock()
        run = Run(repo=repo)
        for i in range(n):
            run.track(Image(imgs[i % 100], caption=f"sample {i}"), name="samples", step=i)
        tracked = clock() - start
        run.close()
        total = clock() - start
        encoded = sum(len(Image(imgs[i % 100], caption=f"sample {i}").to_storage()[1])
                      for i in range(100)) * (n // 100)
        files = [os.path.join(repo, ".aim_core", "runs", f)
                 for f in os.listdir(os.path.join(repo, ".aim_core", "runs"))
                 if f.startswith(run.hash)]
        run_bytes = sum(os.path.getsize(f) for f in files)
        run_bytes += disk_bytes(os.path.join(repo, ".aim_core", "blobs", "runs", run.hash))
        cost.sort()
        p99 = cost[-len(cost) // 100]
        print(json.dumps({"track_median": cost[len(cost) // 2], "track_p99": p99,
                          "tracked": tracked, "total": total, "hash": run.hash,
                          "encoded": encoded, "run_bytes": run_bytes}))

    def read(repo, run_hash):
        best = None
        for _ in range(5):
            start = time.perf_counter()
            seq = Repo(repo).get_run(run_hash).get_image_sequence("samples", {})
            meta = [(value.caption, value.size) for _, (value, _, _) in seq.data.items()]
            elapsed = time.perf_counter() - start
            best = elapsed if best is None else min(best, elapsed)
        print(json.dumps({"read": best, "count": len(meta)}))

    def big(repo, n):  # distinct noise images: each PNG is a blob file, synced before use
        rng = np.random.default_rng(1)
        imgs = [rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for _ in range(n)]
        start = time.perf_counter()
        with Run(repo=repo, system_tracking_interval=None, capture_terminal_logs=False) as run:
            for i, img in enumerate(imgs):
                run.track(Image(img), name="big", step=i)
        blobs = os.path.join(repo, ".aim_core", "blobs")
        print(json.dumps({"total": time.perf_counter() - start, "bytes": disk_bytes(blobs)}))

    if sys.argv[1] == "write":
        main(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "big":
        big(sys.argv[2], int(sys.argv[3]))
    else:
        read(sys.argv[2], sys.argv[3])
''')

AIM_SIDE = COMMON + textwrap.dedent('''
    from aim import Image, Run

    def main(repo, n):
        imgs = images()
        kwargs = dict(repo=repo, system_tracking_interval=None, capture_terminal_logs=False)
        run = Run(**kwargs)
        cost = []
        clock = time.perf_counter
        for i in range(500):
            start = clock()
            run.track(Image(imgs[i % 100], caption=f"sample {i}"), name="warm", step=i)
            cost.append(clock() - start)
        run.close()
        start = clock()
        run = Run(**kwargs)
        for i in range(n):
            run.track(Image(imgs[i % 100], caption=f"sample {i}"), name="samples", step=i)
        tracked = clock() - start
        run.close()
        total = clock() - start
        cost.sort()
        print(json.dumps({"track_median": cost[len(cost) // 2], "tracked": tracked,
                          "total": total, "hash": run.hash, "repo_bytes": disk_bytes(repo)}))

    def read(repo, run_hash):
        from aim import Repo
        from aim.sdk.repo import ContainerConfig
        from aim.storage.context import Context
        from aim.storage.union import RocksUnionContainer

        best = None
        for _ in range(3):
            start = time.perf_counter()
            aim_repo = Repo.from_path(repo)
            # Aim reads metadata through an index that `aim up` keeps current; reading the
            # union of the runs' own files is what a script does without the server.
            union = RocksUnionContainer(os.path.join(aim_repo.path, "meta"), read_only=True)
            aim_repo.container_pool[ContainerConfig("meta", None, True)] = union
            run = Run(run_hash, repo=aim_repo, read_only=True)
            seq = run.get_image_sequence("samples", Context({}))
            meta = [(v.caption, v.size) for _, (v, _, _) in seq.data.items()]
            elapsed = time.perf_counter() - start
            best = elapsed if best is None else min(best, elapsed)
        print(json.dumps({"read": best, "count": len(meta)}))

    if sys.argv[1] == "write":
        main(sys.argv[2], int(sys.argv[3]))
    else:
        read(sys.argv[2], sys.argv[3])
''')


def side(python: str, script: str, *args: str, env: dict | None = None) -> dict:
    """Run one side's script in a fresh process and return its JSON line."""
    out = subprocess.run([python, "-c", script, *args], capture_output=True, text=True,
                         env=env, check=False, timeout=3600)
    if out.returncode:
        raise RuntimeError(f"{python} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Print the figures of both sides."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("--aim-python", default=DEFAULT_AIM_PYTHON)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryDirectory() as tmp:
        ours = side(sys.executable, AIM_CORE_SIDE, "write", f"{tmp}/ours", str(args.n), env=env)
        read = side(sys.executable, AIM_CORE_SIDE, "read", f"{tmp}/ours", ours["hash"], env=env)
        big = side(sys.executable, AIM_CORE_SIDE, "big", f"{tmp}/big", str(BIG), env=env)
        aim = aim_read = None
        if Path(args.aim_python).exists():
            aim_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            aim = side(args.aim_python, AIM_SIDE, "write", f"{tmp}/aim", str(args.n), env=aim_env)
            aim_read = side(args.aim_python, AIM_SIDE, "read", f"{tmp}/aim", aim["hash"],
                            env=aim_env)
    n = args.n
    print(f"{n:,} images of 64x64 RGB uint8, {os.cpu_count()} cores, "
          f"python {sys.version.split()[0]}")
    print(f"track() on the caller's thread:  aim-core {ours['track_median'] * 1e6:7.1f} us "
          f"(median; p99 {ours['track_p99'] * 1e6:.1f} us)"
          + (f", Aim {aim['track_median'] * 1e6:8.1f} us" if aim else ""))
    print(f"track loop only:                 aim-core {ours['tracked']:7.2f} s"
          + (f", Aim {aim['tracked']:8.2f} s" if aim else ""))
    print(f"end to end (track + close):      aim-core {ours['total']:7.2f} s"
          + (f", Aim {aim['total']:8.2f} s, {aim['total'] / ours['total']:.1f}x faster"
             if aim else ""))
    print(f"run on disk / encoded images:    {ours['run_bytes'] / 1e6:7.2f} MB / "
          f"{ours['encoded'] / 1e6:.2f} MB = {ours['run_bytes'] / ours['encoded']:.3f}"
          + (f"  (Aim repo: {aim['repo_bytes'] / 1e6:.2f} MB)" if aim else ""))
    print(f"read metadata of {read['count']:,} images:  aim-core {read['read'] * 1e3:7.1f} ms"
          + (f", Aim {aim_read['read'] * 1e3:8.1f} ms" if aim_read else ""))
    print(f"{BIG} images of 256x256 noise, each a blob file synced to disk (track + close): "
          f"aim-core {big['total']:.2f} s, {big['bytes'] / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
