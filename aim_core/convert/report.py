"""What a conversion did, and the loop that converts one source run after another.

Each source run is converted on its own: a failure is recorded with its reason and the
conversion goes on with the next run, so one damaged run never stops the others.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

Unit = TypeVar("Unit")


@dataclass
class ConvertReport:
    """Counts of a conversion: runs, sequences and points written, what was skipped and why."""

    source: str
    runs_new: int = 0
    runs_updated: int = 0
    runs_unchanged: int = 0
    sequences: int = 0
    points: int = 0
    skipped: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failures

    def skip(self, reason: str, count: int = 1) -> None:
        """Count ``count`` items left out for ``reason``."""
        if count:
            self.skipped[reason] += count

    def note(self, text: str) -> None:
        """Count one occurrence of something worth telling (nothing was lost)."""
        self.notes[text] += 1

    def fail(self, what: str, why: str) -> None:
        """Record that ``what`` could not be converted, and why."""
        self.failures.append((what, why))

    def wrote(self, sequences: int, points: int, new: bool) -> None:
        """Count one run written: ``new`` or an existing one updated."""
        self.sequences += sequences
        self.points += points
        if new:
            self.runs_new += 1
        else:
            self.runs_updated += 1

    def unchanged(self) -> None:
        """Count one run that was converted before and has nothing new."""
        self.runs_unchanged += 1

    def text(self) -> str:
        """The summary printed at the end of ``aim-core convert``."""
        lines = [
            f"{self.source}: {self.runs_new} new run(s), {self.runs_updated} updated, "
            f"{self.runs_unchanged} unchanged; {self.sequences} sequence(s), "
            f"{self.points} point(s) written in {self.seconds:.1f} s"]
        for reason, count in sorted(self.skipped.items()):
            lines.append(f"  skipped {count}: {reason}")
        for text, count in sorted(self.notes.items()):
            lines.append(f"  note ({count}x): {text}")
        for what, why in self.failures:
            lines.append(f"  FAILED {what}: {why}")
        return "\n".join(lines)


class Progress:
    """What the loop reports progress to: a bar with ``update(n)`` (tqdm's shape)."""

    def update(self, n: int = 1) -> None:
        """Count ``n`` units done."""


ProgressFactory = Callable[[int], contextlib.AbstractContextManager]


@contextlib.contextmanager
def progress_bar(factory: ProgressFactory | None, total: int) -> Iterator[Any]:
    """The bar ``factory(total)`` opens, or one that shows nothing."""
    if factory is None:
        yield Progress()
        return
    with factory(total) as bar:
        yield bar


def convert_each(units: Iterable[Unit], convert_one: Callable[[Unit], None],
                 describe: Callable[[Unit], str], report: ConvertReport,
                 bar: Any = None) -> ConvertReport:
    """Convert every unit, recording a failure per unit that raises, and time the whole."""
    start = time.perf_counter()
    bar = bar if bar is not None else Progress()
    for unit in units:
        try:
            convert_one(unit)
        except Exception as exc:  # one bad source run must not stop the others
            report.fail(describe(unit), _reason(exc))
        bar.update(1)
    report.seconds += time.perf_counter() - start
    return report


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
