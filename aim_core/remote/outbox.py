"""A run session's numbered batches that the server has not acknowledged yet, oldest first.

They wait in memory while the server answers. After the first failure, or once more than
``SPILL_BYTES`` wait (a server that answers slowly, or not at all), they move to the on-disk
spool (bounded), and later batches join them there, so memory stays small and nothing is lost
when the process ends before the server is back.
"""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path

from ..warn import warn_safely
from .spool import Spool, SpoolFull

SPILL_BYTES = 32 << 20  # batches waiting in memory beyond this go to the spool
MAX_MEMORY_BYTES = 256 << 20  # only used when the spool cannot be created


class Outbox:
    """Batches in order: in memory, or in the spool once spilled. Callers hold ``lock``."""

    def __init__(self, spool_path: Path) -> None:
        self.lock = threading.RLock()
        self.spool_path = spool_path
        self.spool: Spool | None = None
        self._memory: deque[tuple[int, bytes]] = deque()
        self._memory_bytes = 0
        self.next_seq = 1
        self.lost = 0
        self._warned = False

    def take_seq(self) -> int:
        """The number of the next batch of this session."""
        seq, self.next_seq = self.next_seq, self.next_seq + 1
        return seq

    @property
    def empty(self) -> bool:
        """True when every batch has been acknowledged."""
        return not self._memory and (self.spool is None or self.spool.empty)

    @property
    def points(self) -> int:
        """Points in batches not yet acknowledged."""
        spooled = self.spool.points if self.spool is not None else 0
        return spooled + sum(points for points, _ in self._memory)

    def add(self, body: bytes, points: int) -> None:
        """Queue a batch after every other; count its points lost if there is no room."""
        if self.spool is not None:
            try:
                self.spool.append(body, points)
                return
            except (SpoolFull, OSError) as exc:
                self._lose(points, f"the spool is full ({exc})")
                return
        if self._memory_bytes + len(body) > SPILL_BYTES and self.spill():
            self.add(body, points)
            return
        if self._memory_bytes + len(body) > MAX_MEMORY_BYTES:
            self._lose(points, "the in-memory queue is full and the spool is unavailable")
            return
        self._memory.append((points, body))
        self._memory_bytes += len(body)

    def head(self) -> tuple[int, bytes] | None:
        """``(points, body)`` of the oldest unacknowledged batch."""
        if self.spool is not None and not self.spool.empty:
            return self.spool.first()
        return self._memory[0] if self._memory else None

    def pop(self) -> None:
        """Drop the oldest batch (acknowledged, or refused for good)."""
        if self.spool is not None and not self.spool.empty:
            self.spool.pop()
        elif self._memory:
            _, body = self._memory.popleft()
            self._memory_bytes -= len(body)
        if self.spool is not None and self.spool.empty:
            self.spool.remove()
            self.spool = None

    def spill(self) -> bool:
        """Move the batches in memory to the spool file (created now); False if it cannot be."""
        if self.spool is None:
            try:
                self.spool = Spool(self.spool_path)
            except OSError as exc:
                self._warn(f"cannot create the spool {self.spool_path} ({exc}); batches stay "
                           f"in memory (up to {MAX_MEMORY_BYTES >> 20} MiB)")
                return False
        while self._memory:
            points, body = self._memory[0]
            try:
                self.spool.append(body, points)
            except (SpoolFull, OSError) as exc:
                self._lose(points, f"the spool is full ({exc})")
            self._memory.popleft()
            self._memory_bytes -= len(body)
        return True

    def where(self) -> str:
        """Where the unacknowledged batches are kept, for messages."""
        return str(self.spool.path) if self.spool is not None else "memory"

    def _lose(self, points: int, why: str) -> None:
        self.lost += points
        self._warn(f"{points} points dropped: {why}")

    def _warn(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            warn_safely(f"aim-core: {message}", stacklevel=3)
