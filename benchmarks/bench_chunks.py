"""Point-chunk figures: bytes per point, encode/decode speed against the disk, metric reads.

Run: ``python benchmarks/bench_chunks.py`` (prints one line per figure). Targets (issue 18):
a 100k-point noisy loss tracked by ``Run.track`` takes at most 12 bytes per point on disk,
reading a 1M-point metric's values takes under 30 ms, and encoding is not slower than the
disk (fsync'd writes of the raw points).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from aim_core import Repo, Run
from aim_core.storage.chunks import POINT_BYTES, decode_chunk, encode_chunk

CHUNK = 1 << 16
SMALL, BIG = 100_000, 1_000_000


def best_of(fn, repeats: int = 5) -> float:
    """Fewest seconds ``fn()`` took over ``repeats`` calls."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def noisy_loss(step: int, rng: np.random.Generator) -> float:
    """A decreasing loss with noise in every mantissa bit."""
    return 2.0 / (1.0 + step * 1e-3) + 0.05 * rng.random()


def synthetic_columns() -> dict[str, tuple]:
    """Chunk-sized columns of a few typical shapes."""
    rng = np.random.default_rng(0)
    i = np.arange(CHUNK)
    steps = i.astype(np.int64)
    times = time.time() + np.cumsum(rng.integers(1, 8, CHUNK)) * 1e-6
    loss = 2.0 / (1.0 + i * 1e-3) + 0.05 * rng.random(CHUNK)
    none = np.full(CHUNK, np.nan)
    return {
        "noisy float64 loss": (steps, loss, none, times),
        "float32 loss (torch .item())": (steps, loss.astype(np.float32).astype(float), none,
                                         times),
        "linear value, epochs": (steps, i * 1e-3, (i // 1000).astype(float), times),
        "random steps and values": (rng.integers(-2**62, 2**62, CHUNK), rng.random(CHUNK),
                                    rng.random(CHUNK), rng.random(CHUNK)),
    }


def disk_mb_per_s(folder: Path, size: int) -> float:
    """MB/s of writing ``size`` bytes to a new file and fsyncing it."""
    data = os.urandom(size)

    def write() -> None:
        with open(folder / "disk.bin", "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return size / best_of(write, 3) / 1e6


def codec_figures(folder: Path) -> None:
    """Bytes per point and MB/s of raw points encoded and decoded, per column shape."""
    raw = CHUNK * POINT_BYTES
    print(f"disk write + fsync:            {disk_mb_per_s(folder, raw):8.0f} MB/s")
    for name, columns in synthetic_columns().items():
        blob = encode_chunk(columns)
        enc = best_of(lambda columns=columns: encode_chunk(columns))
        dec = best_of(lambda blob=blob: decode_chunk(blob), 20)
        print(f"{name:30s} {len(blob) / CHUNK:5.2f} bytes/point, encode "
              f"{raw / enc / 1e6:6.0f} MB/s, decode {raw / dec / 1e6:6.0f} MB/s")


def tracked_run(repo: Path, n: int, seed: int) -> str:
    """Track an ``n``-point noisy loss with ``Run.track`` (real timestamps); return its hash."""
    rng = np.random.default_rng(seed)
    run = Run(repo=repo)
    for step in range(n):
        run.track(noisy_loss(step, rng), name="loss", step=step, context={"subset": "train"})
    run.close()
    return run.hash


def run_bytes(repo: Path, run_hash: str) -> int:
    """Bytes on disk of one run's files."""
    files = (repo / ".aim_core" / "runs").glob(f"{run_hash}.sqlite*")
    return sum(f.stat().st_size for f in files)


def read_values(repo: Path, run_hash: str) -> np.ndarray:
    """Read a run's loss values the way a user does."""
    return Repo(repo).get_run(run_hash).get_metric("loss", {"subset": "train"}).values


def main() -> None:
    """Print every figure."""
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        Repo(repo, init=True)
        codec_figures(repo)
        small = tracked_run(repo, SMALL, 1)
        print(f"disk per point, {SMALL:,}-point loss:  {run_bytes(repo, small) / SMALL:6.2f} "
              "bytes (target <= 12)")
        big = tracked_run(repo, BIG, 2)
        assert len(read_values(repo, big)) == BIG
        read = best_of(lambda: read_values(repo, big))
        print(f"disk per point, {BIG:,}-point loss: {run_bytes(repo, big) / BIG:6.2f} bytes")
        print(f"read 1M-point metric .values:  {read * 1e3:8.1f} ms (target < 30)")
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, "
          f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
