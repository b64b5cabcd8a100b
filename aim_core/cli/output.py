"""How the ``aim-core`` command prints: tables, csv, json, times and a progress bar."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from ..spreadsheet import text_cell

MAX_CELL = 40


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Rows as an aligned text table; numbers right-aligned, long cells cut with '…'."""
    cells = [[_cell(value) for value in row] for row in rows]
    numeric = [bool(rows) and all(_is_number(row[i]) or row[i] is None for row in rows)
               for i in range(len(columns))]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = [_line(columns, widths, numeric), _line(["-" * w for w in widths], widths, numeric)]
    lines += [_line(row, widths, numeric) for row in cells]
    return "\n".join(lines)


def _line(cells: Sequence[str], widths: list[int], numeric: list[bool]) -> str:
    parts = [c.rjust(w) if right else c.ljust(w)
             for c, w, right in zip(cells, widths, numeric, strict=True)]
    return "  ".join(parts).rstrip()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, (list, tuple)):
        text = ",".join(str(v) for v in value)
    elif isinstance(value, dict):
        text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    else:
        text = str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def write_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> str:
    """Rows as ``table``, ``csv`` or ``json`` (a list of objects) text."""
    if fmt == "table":
        return format_table(columns, rows) if rows else "(no runs)"
    if fmt == "json":
        records = [dict(zip(columns, (json_value(v) for v in row), strict=True)) for row in rows]
        return json.dumps(records, indent=1, default=str)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_csv_value(v) for v in row] for row in rows)
    return out.getvalue()


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return text_cell(value)


def json_value(value: Any) -> Any:
    """A value JSON can hold: non-finite floats become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def local_time(timestamp: float | None) -> str | None:
    """A Unix time as local ``YYYY-MM-DD HH:MM:SS``."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def iso_time(timestamp: float | None) -> str | None:
    """A Unix time as ISO 8601 in UTC."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat()


def duration_text(seconds: float | None) -> str | None:
    """Seconds as ``0.7s``, ``45s``, ``3m 05s`` or ``2h 01m``."""
    if seconds is None:
        return None
    if seconds < 10:
        return f"{max(0.0, seconds):.1f}s"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def parse_metric_spec(spec: str) -> tuple[str, str, dict[str, Any]]:
    """``loss:subset=val,dataloader=1`` -> (column label, name, context)."""
    name, _, rest = spec.partition(":")
    context: dict[str, Any] = {}
    for part in filter(None, rest.split(",")):
        key, sep, text = part.partition("=")
        if not sep:
            raise ValueError(f"bad metric context {part!r}: write KEY=VALUE")
        try:
            context[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            context[key.strip()] = text.strip()
    return spec, name.strip(), context


class _Counter:
    """The progress shown when tqdm is not installed: a count rewritten in place."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label, self.done = total, label, 0

    def update(self, n: int = 1) -> None:
        self.done += n
        sys.stderr.write(f"\r{self.label}: {self.done}/{self.total}")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


@contextmanager
def progress(total: int, label: str, disable: bool = False, unit: str = "metric"
             ) -> Iterator[Any]:
    """A progress bar on stderr (tqdm when installed, else a counter); ``.update(n)``."""
    if disable or total <= 1:
        bar: Any = _Silent()
    else:
        try:
            from tqdm import tqdm

            bar = tqdm(total=total, desc=label, unit=unit, file=sys.stderr)
        except ImportError:
            bar = _Counter(total, label)
    try:
        yield bar
    finally:
        bar.close()
