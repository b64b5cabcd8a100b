"""Check the GPU system metrics on a machine with an NVIDIA GPU (one short run, ~30 s).

Run from the repository root: ``python benchmarks/gpu_system_check.py`` (needs psutil,
nvidia-ml-py, numpy, sqlitedict; torch with CUDA, when installed, puts load on GPU 0). A run
samples every 0.5 s for 8 s idle and 8 s under load; the script prints what was stored per GPU
and whether each figure is plausible, and exits 1 when one is not (or no GPU is seen).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aim_core import Repo, Run  # noqa: E402
from aim_core.system import sampler  # noqa: E402
from aim_core.system.gpu import GpuReader  # noqa: E402

PLAUSIBLE = {  # name -> (low, high) for any reading
    "__system__gpu": (0.0, 100.0),
    "__system__gpu_memory_percent": (0.0, 100.0),
    "__system__gpu_temp": (5.0, 110.0),
    "__system__gpu_power_watts": (1.0, 1500.0),
}
PHASE_SECONDS = 8.0


def load_gpu(seconds: float) -> str:
    """Keep GPU 0 busy with matrix products; say what was done."""
    try:
        import torch
    except ImportError:
        time.sleep(seconds)
        return "no torch: idle only"
    if not torch.cuda.is_available():
        time.sleep(seconds)
        return "torch without CUDA: idle only"
    a = torch.randn(8192, 8192, device="cuda")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        b = a @ a
        torch.cuda.synchronize()
    del a, b
    return f"matmul load on {torch.cuda.get_device_name(0)}"


def main() -> int:
    """Sample, read back, judge; return the exit code."""
    reader = GpuReader()
    if not reader.available:
        print("no GPU seen through NVML (nvidia-ml-py installed? driver loaded?)")
        return 1
    print(f"NVML sees {len(reader.read())} GPU(s); direct reading: {reader.read()}")
    with tempfile.TemporaryDirectory() as repo:
        run = Run(repo=repo)
        sub = sampler.subscribe(run._writer, 0.5)
        time.sleep(PHASE_SECONDS)
        load_started = time.time()
        how = load_gpu(PHASE_SECONDS)
        sub.stop()
        run.close()
        metrics = list(Repo(repo).get_run(run.hash).metrics())
    ok = True
    print(f"load: {how}")
    print("| metric | gpu | samples | idle median | load median | min | max | plausible |")
    print("|---|---|---|---|---|---|---|---|")
    for m in sorted(metrics, key=lambda m: (m.name, str(m.context.to_dict()))):
        if m.name not in PLAUSIBLE:
            continue
        low, high = PLAUSIBLE[m.name]
        idle = m.values[m.timestamps < load_started]
        busy = m.values[m.timestamps >= load_started]
        good = bool(len(m.values)) and low <= m.values.min() and m.values.max() <= high
        ok &= good
        print(f"| {m.name} | {m.context['gpu']} | {len(m.values)} | {_median(idle)} | "
              f"{_median(busy)} | {m.values.min():.1f} | {m.values.max():.1f} | "
              f"{'yes' if good else 'NO'} |")
    names = {m.name for m in metrics}
    missing = set(PLAUSIBLE) - names
    if missing:
        print(f"missing metrics: {sorted(missing)}")
        ok = False
    if "matmul" in how:
        load = [m for m in metrics if m.name == "__system__gpu" and m.context["gpu"] == 0]
        rose = bool(load) and load[0].values[load[0].timestamps >= load_started].max() > 30
        print(f"GPU 0 utilisation rose above 30% under load: {'yes' if rose else 'NO'}")
        ok &= rose
    print("PLAUSIBLE" if ok else "NOT PLAUSIBLE")
    return 0 if ok else 1


def _median(values) -> str:
    return f"{float(sorted(values)[len(values) // 2]):.1f}" if len(values) else "-"


if __name__ == "__main__":
    sys.exit(main())
