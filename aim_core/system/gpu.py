"""Per-GPU load, memory, temperature and power through NVIDIA's NVML (``pynvml``).

Optional: without the ``nvidia-ml-py`` package (extra ``[gpu]``), without a driver or without
a GPU the reader returns no GPUs and never raises. NVML is initialised once, on first use.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any


class GpuReader:
    """Reads every GPU NVML sees, in NVML's order; ``read()`` is ``[]`` where there is none."""

    def __init__(self) -> None:
        self._nvml: Any = None
        self._handles: list[Any] = []
        self._tried = False

    def _start(self) -> None:
        self._tried = True
        try:
            import pynvml

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            self._nvml = pynvml
        except Exception:  # no package, no library, no driver, no device: no GPU metrics
            self._nvml, self._handles = None, []

    @property
    def available(self) -> bool:
        """True when NVML started and sees at least one GPU."""
        if not self._tried:
            self._start()
        return bool(self._handles)

    def read(self) -> list[dict[str, float]]:
        """One dict per GPU: ``gpu``, ``gpu_memory_percent``, ``gpu_temp``, ``gpu_power_watts``.

        A value the device does not report is left out of its dict.
        """
        if not self.available:
            return []
        return [self._read_one(handle) for handle in self._handles]

    def _read_one(self, handle: Any) -> dict[str, float]:
        nvml = self._nvml
        out: dict[str, float] = {}
        _put(out, "gpu", lambda: nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        _put(out, "gpu_memory_percent", lambda: _memory_percent(nvml, handle))
        _put(out, "gpu_temp",
             lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))
        _put(out, "gpu_power_watts", lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0)
        return out


def _memory_percent(nvml: Any, handle: Any) -> float:
    memory = nvml.nvmlDeviceGetMemoryInfo(handle)
    return memory.used * 100.0 / memory.total


def _put(out: dict[str, float], key: str, read: Callable[[], float]) -> None:
    with contextlib.suppress(Exception):  # not supported, or the GPU fell off the bus
        out[key] = round(float(read()), 5)
