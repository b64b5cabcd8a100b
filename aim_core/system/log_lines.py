"""Raw terminal writes -> numbered lines, each in the state a terminal would finally show.

Runs on the flusher thread, never in ``write()``. A line ends at ``\\n``; within it ``\\r``
returns to the first column so later text overwrites earlier text (a progress bar's updates
collapse to its last state), ``ESC[K`` erases to the end of the line, and the cursor moves
``ESC[nA``/``ESC[nB`` (multi-line progress bars) move the line number up or down, as in Aim.
Colours and other escape sequences are kept as written. stdout and stderr keep their own
unfinished line, so a line is never split by the other stream's output; finished lines are
numbered in the order they ended.
"""

from __future__ import annotations

import re
from itertools import groupby
from operator import itemgetter
from typing import Any

Line = tuple[int, str, float]  # (line number, text, time the line was seen)

_CONTROL = re.compile(r"(\r|\x1b\[[0-9;]*[A-DK])")
MAX_PARTIAL = 1 << 20  # an unfinished line this long (no \n for ages) is cut into a line
_COMPACT_AT = 1 << 12  # an unfinished line longer than this has its rewrites collapsed
MAX_MOVE = 1 << 12  # cursor moves beyond this (``ESC[99999999C``) are cut, as a screen would
MAX_COLUMN = 1 << 16


def render(text: str) -> tuple[str, int]:
    """Return the text a terminal shows for one line, and how many lines the cursor moved."""
    if "\r" not in text and "\x1b[" not in text:
        return text, 0
    screen, col, moved = "", 0, 0
    for token in _CONTROL.split(text):
        if not token:
            continue
        if token == "\r":
            col = 0
        elif _CONTROL.fullmatch(token):
            screen, col, moved = _escape(token, screen, col, moved)
        else:
            screen = screen[:col].ljust(col) + token + screen[col + len(token):]
            col += len(token)
    return screen.rstrip(), moved


def _escape(token: str, screen: str, col: int, moved: int) -> tuple[str, int, int]:
    arg, command = token[2:-1], token[-1]
    count = 1 if not arg.isdigit() else MAX_MOVE if len(arg) > 4 else min(int(arg), MAX_MOVE)
    if command == "A":
        moved -= count
    elif command == "B":
        moved += count
    elif command == "C":
        col = min(col + count, max(MAX_COLUMN, len(screen)))
    elif command == "D":
        col = max(col - count, 0)
    elif arg in ("", "0"):  # K: erase to the end of the line
        screen = screen[:col]
    elif arg == "2":  # K: erase the whole line
        screen = ""
    else:  # 1K: erase from the start to the cursor
        screen = " " * min(col + 1, len(screen)) + screen[col + 1:]
    return screen, col, moved


class _Partial:
    """One stream's unfinished line, kept as pieces so many small writes stay linear."""

    __slots__ = ("pieces", "size", "limit", "when")

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.size, self.limit, self.when = 0, _COMPACT_AT, 0.0

    def text(self) -> str:
        """The unfinished line as written (joined once)."""
        if len(self.pieces) > 1:
            self.pieces[:] = ["".join(self.pieces)]
        return self.pieces[0] if self.pieces else ""

    def add(self, text: str, when: float) -> None:
        """Append a piece; compact rewrites once the line grows long."""
        self.pieces.append(text)
        self.size += len(text)
        self.when = when
        if self.size > self.limit:
            joined = self.text()
            cut = joined.rfind("\r")  # what follows the last \r starts at column 0
            if cut > 0:
                joined = render(joined[:cut])[0] + joined[cut:]
            self.pieces[:] = [joined]
            self.size = len(joined)
            self.limit = max(_COMPACT_AT, 2 * self.size)

    def take(self) -> str:
        """Return the line and start a new one."""
        text = self.text()
        self.pieces.clear()
        self.size, self.limit = 0, _COMPACT_AT
        return text


class LineSplitter:
    """Feeds on ``(stream, text)`` writes; hands back finished and live lines."""

    def __init__(self, first_line: int = 0) -> None:
        self.first_line = self.next_line = first_line
        self._partial: dict[int, _Partial] = {}
        self._shown: dict[int, str] = {}

    def feed(self, writes: list[tuple[int, Any]], when: float) -> list[Line]:
        """Return the lines finished by ``writes`` (taken at time ``when``), in order."""
        out: list[Line] = []
        for stream, group in groupby(writes, key=itemgetter(0)):
            text = "".join([_as_text(data) for _, data in group])
            partial = self._partial.get(stream)
            if partial is None:
                partial = self._partial[stream] = _Partial()
            if "\n" in text:
                parts = text.split("\n")
                partial.add(parts[0], when)
                out.append(self._finish(partial.take(), when))
                out.extend(self._finish(part, when) for part in parts[1:-1])
                text = parts[-1]
            if text:
                partial.add(text, when)
                if partial.size > MAX_PARTIAL:  # no \n for ages: cut it here
                    out.append(self._finish(partial.take(), when))
        return out

    def _finish(self, text: str, when: float) -> Line:
        shown, moved = render(text)
        self.next_line = max(self.next_line + moved, self.first_line)
        line = (self.next_line, shown, when)
        self._shown.pop(self.next_line, None)
        self.next_line += 1
        return line

    def live_lines(self) -> list[Line]:
        """The unfinished lines as shown now, numbered after the finished ones.

        Only lines that changed since the last call are returned; the finished line later
        takes the same number, so readers (who keep the last point of a step) see it replaced.
        """
        out: list[Line] = []
        step = self.next_line
        for stream in sorted(self._partial):
            partial = self._partial[stream]
            shown = render(partial.text())[0]
            if not shown:
                continue
            if self._shown.get(step) != shown:
                self._shown[step] = shown
                out.append((step, shown, partial.when))
            step += 1
        return out

    def finish(self) -> list[Line]:
        """End every unfinished line (the capture stops): they become finished lines."""
        out = []
        for stream in sorted(self._partial):
            partial = self._partial.pop(stream)
            text = partial.take()
            if render(text)[0] or self.next_line in self._shown:  # a shown live line is replaced
                out.append(self._finish(text, partial.when))
        return out


def _as_text(data: Any) -> str:
    if isinstance(data, str):
        return data
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data).decode("utf-8", "replace")
    return str(data)
