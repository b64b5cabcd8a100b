"""The file of one run, ``runs/<hash>.sqlite``: its layout and how to read it.

Keys of the single table ``run`` (JSON unless said otherwise):

- ``format``: the layout version (``FORMAT_VERSION``); a newer one is refused, not guessed at.
- ``props``: name, description, experiment, tags, creation_time, end_time, active,
  archived, status.
- ``params``: the nested params dict.
- ``sequences``: ``{seq_id: {"name", "context", "chunks" (chunk ids, oldest first),
  "chunk_sizes", "count", "first_step", "first", "last_step", "last", "min", "max"}}``.
- ``chunk/<seq_id>/<chunk_id>``: point chunks (see ``chunks.py``); small chunks are
  merged until they reach ``CHUNK_POINTS`` points (see ``sequence_state.py``), so a sequence
  is a handful of blobs however often it was flushed.

Everything one flush writes lands in one transaction.
"""

from __future__ import annotations

import os
import sqlite3
import struct
from pathlib import Path
from typing import Any

from ..errors import RunCorruptedError
from .chunks import Columns, concat_columns, decode_chunk, decode_chunks, sort_by_step
from .kvfile import KVFile, ReadOnlyKV

CHUNK_POINTS = 1 << 16
FORMAT_VERSION = 1
READ_ERRORS = (sqlite3.DatabaseError, ValueError, TypeError, KeyError, RuntimeError, OSError)


LAYOUT_KEYS = ("chunks", "chunk_sizes")


def summary_of(info: dict[str, Any]) -> dict[str, Any]:
    """A sequence info without its chunk layout: name, context, count, first/last, min/max."""
    return {k: v for k, v in info.items() if k not in LAYOUT_KEYS}


def chunk_key(seq_id: str, index: int) -> str:
    """Return the key of one chunk."""
    return f"chunk/{seq_id}/{index:06d}"


class RunFile:
    """One run's SQLite file, for the run's writer or for readers."""

    def __init__(self, path: Path, run_hash: str, read_only: bool = True) -> None:
        self.path, self.run_hash = Path(path), run_hash
        if read_only and file_looks_damaged(self.path):
            raise self.corrupted(ValueError("not a complete SQLite file"))
        try:
            self.kv = ReadOnlyKV(self.path, "run") if read_only else KVFile(self.path, "run")
        except READ_ERRORS as exc:
            raise self.corrupted(exc) from exc

    def load_meta(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]:
        """Return ``(props, params, sequences)``; RunCorruptedError when unreadable."""
        try:
            version = self.kv.get("format", FORMAT_VERSION)
            props = self.kv.get("props")
            params = self.kv.get("params", {})
            sequences = self.kv.get("sequences", {})
        except READ_ERRORS as exc:
            raise self.corrupted(exc) from exc
        if version > FORMAT_VERSION:
            raise RunCorruptedError(
                f"Run {self.run_hash} was written by a newer aim-core (format {version}); "
                "upgrade aim-core to read it.")
        if not isinstance(props, dict) or not isinstance(sequences, dict):
            raise self.corrupted(ValueError("run properties are missing"))
        return props, params, sequences

    def read_columns(self, seq_id: str, chunk_ids: list[int], sort: bool = True) -> Columns:
        """Read every stored point of one sequence, sorted by step unless told otherwise."""
        try:
            columns = decode_chunks([self.kv.get(chunk_key(seq_id, i)) for i in chunk_ids])
        except READ_ERRORS as exc:
            raise self.corrupted(exc) from exc
        return sort_by_step(columns) if sort else columns

    def read_sequence(self, name: str, context: dict[str, Any]) -> Columns:
        """Read the latest stored points of ``(name, context)`` as one consistent snapshot."""
        try:
            with self.kv.snapshot():
                for seq_id, info in self.kv.get("sequences", {}).items():
                    if info["name"] == name and info["context"] == context:
                        return self.read_columns(seq_id, info["chunks"])
        except READ_ERRORS as exc:
            raise self.corrupted(exc) from exc
        return concat_columns([])

    def read_chunk(self, seq_id: str, index: int) -> Columns:
        """Read one chunk in tracking order."""
        try:
            return decode_chunk(self.kv.get(chunk_key(seq_id, index)))
        except READ_ERRORS as exc:
            raise self.corrupted(exc) from exc

    def corrupted(self, exc: BaseException) -> RunCorruptedError:
        """Build the error for a damaged file."""
        return RunCorruptedError(
            f"Run {self.run_hash} cannot be read ({exc}); its file {self.path} is damaged. "
            "Other runs are unaffected; delete this run with `aim-core runs rm "
            f"{self.run_hash}` or restore the file from a backup."
        )

    def close(self) -> None:
        """Close the file."""
        self.kv.close()


def file_looks_damaged(path: Path) -> bool:
    """A cheap check: the SQLite header is missing or claims more pages than the file has."""
    try:
        with open(path, "rb") as f:
            header = f.read(100)
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if header and not header.startswith(b"SQLite format 3\x00"[: len(header)]):
        return True
    try:
        if os.stat(f"{path}-wal").st_size > 0:
            return False  # the newest pages live in the write-ahead log
    except FileNotFoundError:
        pass
    if len(header) < 100:
        return True
    page_size = struct.unpack_from(">H", header, 16)[0]
    page_size = 65536 if page_size == 1 else page_size
    pages = struct.unpack_from(">I", header, 28)[0]
    return pages * page_size > size
