"""One reading of the machine and this process (CPU, memory, disk) through psutil.

Names and meaning follow Aim's resource tracker: ``cpu`` is this process's CPU use in percent
of one core (above 100 with several busy threads), ``memory_percent`` the machine's used
memory, ``p_memory_percent`` this process's resident memory, ``disk_percent`` the use of the
disk holding ``/``; all in percent, rounded to 5 decimals.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

PREFIX = "__system__"
SYSTEM_NAMES = ("cpu", "memory_percent", "p_memory_percent", "disk_percent")


@dataclass(frozen=True)
class CpuMark:
    """This process's CPU seconds (user + system) at a monotonic wall time."""

    cpu_seconds: float
    wall: float

    def percent_since(self, earlier: CpuMark) -> float:
        """CPU use between ``earlier`` and this mark, in percent of one core."""
        elapsed = self.wall - earlier.wall
        if elapsed <= 0:
            return 0.0
        return round(max(self.cpu_seconds - earlier.cpu_seconds, 0.0) * 100.0 / elapsed, 5)


@dataclass(frozen=True)
class Reading:
    """Everything one sample needs; ``cpu`` marks let each run measure its own interval."""

    time: float
    cpu: CpuMark
    process_start: CpuMark
    memory_percent: float
    p_memory_percent: float
    disk_percent: float
    gpus: list[dict[str, float]]


class ProcessStats:
    """Reads this process and machine; psutil is imported on first use."""

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._process = psutil.Process()
        self._started = self._process.create_time()

    def start_mark(self) -> CpuMark:
        """The mark of the process's start: zero CPU seconds, its age ago."""
        age = max(time.time() - self._started, 0.0)
        return CpuMark(0.0, time.monotonic() - age)

    def cpu_mark(self) -> CpuMark:
        """This process's CPU seconds now."""
        times = self._process.cpu_times()
        return CpuMark(times.user + times.system, time.monotonic())

    def read(self, gpus: list[dict[str, float]]) -> Reading:
        """Read CPU, memory and disk now; ``gpus`` comes from the GPU reader."""
        psutil = self._psutil
        memory = psutil.virtual_memory()
        return Reading(
            time=time.time(),
            cpu=self.cpu_mark(),
            process_start=self.start_mark(),
            memory_percent=round(memory.used * 100.0 / memory.total, 5),
            p_memory_percent=round(self._process.memory_percent(), 5),
            disk_percent=round(psutil.disk_usage("/").percent, 5),
            gpus=gpus,
        )


def sample_values(reading: Reading, since: CpuMark | None
                  ) -> list[tuple[str, dict[str, Any], float]]:
    """The ``(name, context, value)`` triples of one sample.

    CPU is measured from ``since`` (the run's previous sample), else from the process's start.
    """
    cpu = reading.cpu.percent_since(since or reading.process_start)
    out: list[tuple[str, dict[str, Any], float]] = [
        (PREFIX + "cpu", {}, cpu),
        (PREFIX + "memory_percent", {}, reading.memory_percent),
        (PREFIX + "p_memory_percent", {}, reading.p_memory_percent),
        (PREFIX + "disk_percent", {}, reading.disk_percent),
    ]
    for index, gpu in enumerate(reading.gpus):
        out.extend((PREFIX + key, {"gpu": index}, value) for key, value in gpu.items())
    return out
