"""The on-disk spool: batches a server has not acknowledged yet, kept in order.

One file per run session, ``<cache>/aim-core/spool/<server>/<run>-<session>.spool``:
``MAGIC | u64 head offset`` followed by records ``u32 length | u32 crc32 | u32 points |
body``. ``head`` is the offset of the oldest unacknowledged record; a record cut short by a
crash fails its length or checksum and ends the file. The owning process holds an flock on
it; a spool nobody holds is an orphan that the next client process replays (bodies carry
their idempotency keys, so replaying an acknowledged batch changes nothing).
"""

from __future__ import annotations

import fcntl
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

from .settings import env_number

MAGIC = b"ACSPOOL1"
_HEAD = struct.Struct("<Q")
_RECORD = struct.Struct("<III")
_START = len(MAGIC) + _HEAD.size
DEFAULT_MAX_BYTES = 1 << 30


def spool_root() -> Path:
    """``AIM_CORE_SPOOL_DIR``, else ``$XDG_CACHE_HOME/aim-core/spool`` (``~/.cache``)."""
    explicit = os.environ.get("AIM_CORE_SPOOL_DIR")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "aim-core" / "spool"


def max_spool_bytes() -> int:
    """The size bound of one spool file: ``AIM_CORE_SPOOL_MAX_MB``, default 1024 MiB."""
    megabytes = env_number("AIM_CORE_SPOOL_MAX_MB", DEFAULT_MAX_BYTES / (1 << 20), 0.0, 1 << 40)
    return int(megabytes * (1 << 20))


class SpoolFull(Exception):
    """Appending would grow the spool beyond its bound."""


class Spool:
    """An append-only file of batch bodies with a persisted head (oldest unacknowledged)."""

    def __init__(self, path: Path, max_bytes: int | None = None, create: bool = True) -> None:
        self.path = Path(path)
        self.max_bytes = max_spool_bytes() if max_bytes is None else max_bytes
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDWR | (os.O_CREAT if create else 0)
        self._fd = os.open(self.path, flags, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise
        size = os.fstat(self._fd).st_size
        if size < _START:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, MAGIC + _HEAD.pack(_START), 0)
            self.head = self.end = _START
        else:
            magic = os.pread(self._fd, _START, 0)
            if magic[: len(MAGIC)] != MAGIC:
                os.close(self._fd)
                raise ValueError(f"{self.path} is not an aim-core spool file")
            self.head = _HEAD.unpack_from(magic, len(MAGIC))[0]
            self.end = self._valid_end(size)
        self.points = sum(points for _, points, _ in self.records())

    def _valid_end(self, size: int) -> int:
        offset = self.head
        while offset + _RECORD.size <= size:
            length, crc, _ = _RECORD.unpack(os.pread(self._fd, _RECORD.size, offset))
            body = os.pread(self._fd, length, offset + _RECORD.size)
            if len(body) != length or zlib.crc32(body) != crc:
                break
            offset += _RECORD.size + length
        return offset

    @property
    def empty(self) -> bool:
        """True when every record has been acknowledged."""
        return self.head >= self.end

    def append(self, body: bytes, points: int) -> None:
        """Add a record at the end; ``SpoolFull`` when over the bound (nothing written).

        Acknowledged records do not count: when the file would outgrow its bound, the
        unacknowledged ones move to its start first (a server catching up on a long backlog
        while training goes on must not make the spool drop batches).
        """
        size = _RECORD.size + len(body)
        if self.end + size > self.max_bytes and not self._compact(size):
            raise SpoolFull(f"{self.path} would exceed {self.max_bytes} bytes")
        os.pwrite(self._fd, _RECORD.pack(len(body), zlib.crc32(body), points) + body, self.end)
        self.end += _RECORD.size + len(body)
        self.points += points

    def _compact(self, room: int) -> bool:
        """Move the unacknowledged records to the start if that makes ``room``; True if so.

        Only when they fit below the head (copy and source never overlap): until the header
        points at the copy, the records at the old head stay intact, so a crash at any moment
        leaves a valid spool (at worst, acknowledged records after the copy are sent again,
        which their idempotency keys make harmless).
        """
        live = self.end - self.head
        if _START + live + room > self.max_bytes or live > self.head - _START:
            return False
        for offset in range(0, live, 1 << 20):
            chunk = os.pread(self._fd, min(1 << 20, live - offset), self.head + offset)
            os.pwrite(self._fd, chunk, _START + offset)
        os.pwrite(self._fd, _RECORD.pack(0, 1, 0), _START + live)  # a bad checksum ends them
        os.pwrite(self._fd, _HEAD.pack(_START), len(MAGIC))
        os.ftruncate(self._fd, _START + live)
        self.head, self.end = _START, _START + live
        return True

    def records(self) -> Iterator[tuple[int, int, bytes]]:
        """Yield ``(offset, points, body)`` of each unacknowledged record, oldest first."""
        offset = self.head
        while offset < self.end:
            length, _, points = _RECORD.unpack(os.pread(self._fd, _RECORD.size, offset))
            body = os.pread(self._fd, length, offset + _RECORD.size)
            yield offset, points, body
            offset += _RECORD.size + length

    def first(self) -> tuple[int, bytes] | None:
        """``(points, body)`` of the oldest unacknowledged record, or None."""
        for _, points, body in self.records():
            return points, body
        return None

    def pop(self) -> None:
        """Mark the oldest record acknowledged."""
        if self.empty:
            return
        length, _, points = _RECORD.unpack(os.pread(self._fd, _RECORD.size, self.head))
        self.head += _RECORD.size + length
        self.points -= points
        os.pwrite(self._fd, _HEAD.pack(self.head), len(MAGIC))

    def remove(self) -> None:
        """Delete the file (every record acknowledged) and release it."""
        self.path.unlink(missing_ok=True)
        self.close()

    def close(self) -> None:
        """Release the file, leaving it for a later process to replay."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def orphans(folder: Path) -> Iterator[Spool]:
    """Open the spool files in ``folder`` that no live process holds."""
    for path in sorted(folder.glob("*.spool")):
        try:
            yield Spool(path, max_bytes=1 << 62, create=False)
        except (BlockingIOError, FileNotFoundError, ValueError):
            continue
