"""Resource limits of AimQL: how big a value a query may build, and how long it may run.

Every operation that can make a value much bigger than its inputs checks the size of its
result before building it: ``*``, ``+`` and ``%`` on str, bytes, lists and tuples,
``str.join``, ``str.replace``, ``str()``, integer ``*`` and ``**``, and ``round``. A value
may hold at most ``MAX_SEQUENCE_RESULT`` items and characters, counting every reference to
a shared item (``[s] * 1000`` holds ``s`` a thousand times), an integer at most
``MAX_INT_BITS`` bits, and one evaluation (of one run or one sequence) may build at most
``MAX_BUILT`` in all. Going over a limit raises :class:`QueryError` naming it.

A query's time budget (``timeout=`` of ``query_runs``/``query_metrics``) is checked at the
start of every evaluation and bounds each regular-expression match (see ``patterns.py``).
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import QueryError

MAX_SEQUENCE_RESULT = 1_000_000  # items and characters in one value a query builds
MAX_BUILT = 4_000_000  # ... in all the values one evaluation builds
MAX_INT_BITS = 100_000
MAX_ROUND_DIGITS = 10_000
INT_STR_DIGITS = 4_300  # CPython's own limit on int <-> str conversion
FLOAT_TEXT = 330  # the longest "%f" of a float
FLOAT_REPR = 24  # the longest repr() of a float

_SEQUENCES = (str, bytes, list, tuple)
_CONTAINERS = (list, tuple, set, frozenset)
# one printf-style conversion: %[(key)][flags][width][.precision][length]type
_SPEC = re.compile(r"%(\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.)", re.DOTALL)


class _State(threading.local):
    """The budgets of the query and of the evaluation running on this thread."""

    deadline: float | None = None
    timeout: float | None = None
    built: int = 0


_state = _State()


@contextmanager
def time_budget(timeout: float | None) -> Iterator[None]:
    """Let the evaluations inside run until ``timeout`` seconds from now (None: no limit)."""
    if timeout is not None and (not isinstance(timeout, (int, float)) or not timeout >= 0):
        raise ValueError(f"timeout must be a number of seconds >= 0 or None, got {timeout!r}")
    saved = _state.deadline, _state.timeout
    _state.deadline = None if timeout is None else time.monotonic() + timeout
    _state.timeout = timeout
    try:
        yield
    finally:
        _state.deadline, _state.timeout = saved


def timed(query: Callable[..., Any]) -> Callable[..., Any]:
    """Run a query function within the time budget given by its ``timeout`` keyword."""
    @functools.wraps(query)
    def run(*args: Any, **kwargs: Any) -> Any:
        with time_budget(kwargs.get("timeout")):
            return query(*args, **kwargs)
    return run


def start_evaluation() -> None:
    """Begin evaluating a query on one run or sequence: check the time, reset the sizes."""
    check_time()
    _state.built = 0


def check_time() -> None:
    """Raise QueryError when the query has used up its time budget."""
    if _state.deadline is not None and time.monotonic() >= _state.deadline:
        raise QueryError(f"the query took longer than its time budget of {_state.timeout:g} s; "
                         "narrow it (fewer runs, simpler expressions) or give it more time")


def time_left() -> float | None:
    """Seconds left of the query's time budget, or None when it has none."""
    return None if _state.deadline is None else _state.deadline - time.monotonic()


def charge(size: int, what: str) -> None:
    """Account for a value of ``size`` that ``what`` is about to build."""
    if size > MAX_SEQUENCE_RESULT:
        raise QueryError(f"a query may not build a value of more than {MAX_SEQUENCE_RESULT:,} "
                         f"items and characters ({what} would make {size:,})")
    _state.built += size
    if _state.built > MAX_BUILT:
        raise QueryError(f"a query may build at most {MAX_BUILT:,} items and characters per "
                         f"run it looks at ({what} goes over); simplify it")


def size_of(value: Any, limit: int = MAX_SEQUENCE_RESULT) -> int:
    """Items and characters of ``value`` as text, shared ones counted each time, up to ``limit``."""
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bytes:
            total += 1 + len(item)
        elif kind is int:
            total += 1 + item.bit_length() // 3  # at least its decimal digits
        elif kind is float:
            total += FLOAT_REPR
        elif kind in _CONTAINERS or kind is dict:
            items = (*item.keys(), *item.values()) if kind is dict else item
            total += 1
            if total + len(items) > limit:
                return total + len(items)
            stack.extend(items)
        else:
            total += 1
        if total > limit:
            break
    return total


def _too_many_bits(bits: int, what: str) -> QueryError:
    return QueryError(f"a query may not build integers of more than {MAX_INT_BITS:,} bits "
                      f"({what} would make about {bits:,})")


def checked_mul(a: Any, b: Any) -> Any:
    """``a * b`` with repetition and integer products bounded."""
    if type(a) is int and type(b) is int:
        bits = a.bit_length() + b.bit_length()
        if bits > MAX_INT_BITS:
            raise _too_many_bits(bits, "'*'")
        return a * b
    for seq, count in ((a, b), (b, a)):
        if isinstance(seq, _SEQUENCES) and isinstance(count, int) and count > 0:
            limit = MAX_SEQUENCE_RESULT // count + 1
            part = len(seq) if isinstance(seq, (str, bytes)) else size_of(seq, limit) - 1
            charge(part * count, "'*'")
    return a * b


def checked_add(a: Any, b: Any) -> Any:
    """``a + b`` with concatenation bounded."""
    if isinstance(a, _SEQUENCES) and type(a) is type(b):
        left = size_of(a)
        charge(left + size_of(b, MAX_SEQUENCE_RESULT - left + 1), "'+'")
    return a + b


def checked_pow(a: Any, b: Any) -> Any:
    """``a ** b`` with integer results bounded."""
    if isinstance(a, int) and isinstance(b, int) and abs(a) > 1 and b > 0:
        bits = a.bit_length() * b
        if bits > MAX_INT_BITS:
            raise _too_many_bits(bits, "'**'")
    return a**b


def checked_mod(a: Any, b: Any) -> Any:
    """``a % b``: printf-style formatting of str and bytes bounded, numbers as they are."""
    if isinstance(a, (str, bytes)):
        charge(_format_size(a, b), "'%' formatting")
    return a % b


def _format_size(fmt: str | bytes, args: Any) -> int:
    """An upper bound of the length of ``fmt % args``, found before formatting."""
    text = fmt.decode("latin-1") if isinstance(fmt, bytes) else fmt
    specs = [m for m in _SPEC.finditer(text) if m.group(4) != "%"]
    size = len(text)
    for spec in specs:
        for number in spec.group(2, 3):
            if number and number != "*":
                size += int(number) if len(number) < 10 else MAX_SEQUENCE_RESULT + 1
    if type(args) is dict:  # each conversion may name any key
        widest = max((_text_size(v) for v in args.values()), default=0)
        return size + len(specs) * widest
    values = args if type(args) is tuple else (args,)
    size += sum(_text_size(v) for v in values)
    if any("*" in spec.group(0) for spec in specs):
        size += sum(min(abs(v), MAX_SEQUENCE_RESULT + 1) for v in values if type(v) is int)
    return size


def _text_size(value: Any) -> int:
    """An upper bound of the length of ``str(value)`` or ``repr(value)``."""
    kind = type(value)
    if kind is str or kind is bytes:
        return len(value) + 3
    if kind is int:
        return min(value.bit_length() // 3, INT_STR_DIGITS) + 2
    if kind is float:
        return FLOAT_TEXT
    return 2 * size_of(value)  # quotes, commas and spaces between the items


def checked_join(sep: str, items: Any) -> str:
    """``sep.join(items)`` bounded."""
    if type(items) in (list, tuple, set, frozenset, dict, str):
        count = len(items)
        chars = 0
        for item in items if type(items) is not str else ():
            chars += len(item) if type(item) is str else 0
            if chars > MAX_SEQUENCE_RESULT:
                break
        chars = count if type(items) is str else chars
        charge(chars + len(sep) * max(count - 1, 0), "str.join")
    return sep.join(items)


def checked_replace(text: str, old: Any, new: Any, count: Any = -1) -> str:
    """``text.replace(old, new, count)`` bounded."""
    if type(old) is str and type(new) is str and type(count) is int:
        found = text.count(old)
        if count >= 0:
            found = min(found, count)
        charge(len(text) + found * (len(new) - len(old)), "str.replace")
    return text.replace(old, new, count)


def checked_str(value: Any) -> str:
    """``str(value)`` with big containers refused before they are turned into text."""
    if type(value) is not str:
        charge(_text_size(value), "str()")
    return str(value)


def checked_round(number: Any, ndigits: Any = None) -> Any:
    """``round(number, ndigits)`` with ``ndigits`` bounded (``round(1, -10**9)`` is huge)."""
    if isinstance(ndigits, int) and abs(ndigits) > MAX_ROUND_DIGITS:
        raise QueryError(f"round() in a query takes ndigits between -{MAX_ROUND_DIGITS:,} "
                         f"and {MAX_ROUND_DIGITS:,}, got {ndigits:,}")
    return round(number) if ndigits is None else round(number, ndigits)
