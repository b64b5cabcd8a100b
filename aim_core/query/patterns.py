"""Regular expressions in AimQL (``re.match``, ``re.search``, ``re.fullmatch``) that cannot hang.

Python's ``re`` engine backtracks: ``(a|aa)+$`` takes exponential time on a long run of
``a``. A running ``re`` match holds the GIL (every other thread of the process, a dashboard's
event loop included, stops until it ends) and can be interrupted only by a signal handler on
the main thread, so a time limit around it cannot work where queries are served.

- With the ``regex`` package (``pip install 'aim-core[regex]'``) patterns keep ``re``'s syntax
  and each match runs with ``timeout`` (checked inside the engine, in any thread) and
  ``concurrent=True`` (the GIL is released while it runs): a catastrophic pattern raises
  :class:`QueryError` after ``MATCH_SECONDS``, or sooner when the query's time budget ends.
- Without it, ``re`` runs only patterns whose backtracking is provably bounded: no
  backreferences or conditionals; nothing repeated that can match in more than one way
  (a repeat inside a repeat, alternatives or optional parts inside a repeat); and, for the
  text at hand, at most ``MAX_STEPS`` match paths (the alternatives times the choices of
  every repeat, times the text's length). Other patterns raise QueryError naming the package.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from ..errors import QueryError
from .limits import check_time, time_left

try:
    from re import _parser as _sre_parse  # Python 3.11+
except ImportError:  # pragma: no cover - Python 3.10
    import sre_parse as _sre_parse  # type: ignore[no-redef]

try:
    import regex as regex_engine
except ImportError:  # pragma: no cover - depends on the install
    regex_engine = None

MATCH_SECONDS = 0.25
MAX_STEPS = 50_000_000
MAX_REPEATS = 24
INSTALL_HINT = "install the regex package (pip install 'aim-core[regex]') to lift this limit"
_UNBOUNDED = _sre_parse.MAXREPEAT
_SINGLE = frozenset({"LITERAL", "NOT_LITERAL", "ANY", "IN", "CATEGORY", "AT"})
_REPEATS = frozenset({"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"})


# How many match paths a backtracking engine may try, as a function of the text: the
# coefficients of a polynomial in x = length + 1 (an unbounded repeat multiplies by x).
Paths = tuple[int, ...]
_ONE: Paths = (1,)
_CAP = MAX_STEPS + 1
_SMALL_REPEAT = 64  # a repeat with at most this many choices counts them, not the length


def _times(p: Paths, q: Paths) -> Paths:
    """Paths of two parts in sequence."""
    if len(p) + len(q) - 2 > MAX_REPEATS:
        raise ValueError(f"it has more than {MAX_REPEATS} repeats in a row")
    out = [0] * (len(p) + len(q) - 1)
    for i, a in enumerate(p):
        for j, b in enumerate(q):
            out[i + j] = min(out[i + j] + a * b, _CAP)
    return tuple(out)


def _plus(p: Paths, q: Paths) -> Paths:
    """Paths of two alternatives."""
    longer, shorter = (p, q) if len(p) >= len(q) else (q, p)
    return tuple(min(c + (shorter[i] if i < len(shorter) else 0), _CAP)
                 for i, c in enumerate(longer))


def _steps(paths: Paths, length: int) -> int:
    """An upper bound of the paths tried on a text of ``length`` characters, from each start."""
    x, total = length + 1, 0
    for degree, coefficient in enumerate(paths):
        total += coefficient * x**degree
        if total > MAX_STEPS:
            break
    return total * x


def check_pattern(pattern: str) -> None:
    """Raise QueryError when ``pattern`` is invalid (or, without ``regex``, not provably safe)."""
    _compiled(pattern)


def regex_function(name: str) -> Callable[[Any, Any], Any]:
    """The query function ``re.<name>(pattern, text)``: None unless both are str."""
    def run(pattern: Any, text: Any) -> Any:
        if not isinstance(pattern, str) or not isinstance(text, str):
            return None
        compiled, paths = _compiled(pattern)
        if paths is None:
            return _timed(getattr(compiled, name), pattern, text)
        check_time()
        if _steps(paths, len(text)) > MAX_STEPS:
            raise QueryError(f"re.{name}() with {pattern!r} could take too long on a text of "
                             f"{len(text):,} characters (more than {MAX_STEPS:,} match paths); "
                             f"simplify the pattern, or {INSTALL_HINT}")
        return getattr(compiled, name)(text)
    run.__name__ = name
    return run


def _timed(match: Callable[..., Any], pattern: str, text: str) -> Any:
    left = time_left()
    seconds = MATCH_SECONDS if left is None else min(MATCH_SECONDS, left)
    if seconds <= 0:
        check_time()
    try:
        return match(text, timeout=max(seconds, 1e-3), concurrent=True)
    except TimeoutError:
        check_time()
        raise QueryError(f"the regular expression {pattern!r} took longer than {seconds:.2g} s "
                         "on one text; simplify it") from None


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> tuple[Any, Paths | None]:
    """The compiled pattern, and its match paths when ``re`` (not ``regex``) runs it."""
    engine = regex_engine
    errors: tuple[type[BaseException], ...] = (
        re.error, RecursionError, OverflowError, ValueError, TypeError,
        *((engine.error,) if engine is not None else ()))
    try:
        if engine is not None:
            return engine.compile(pattern, engine.VERSION0), None
        compiled = re.compile(pattern)
    except errors as exc:
        raise QueryError(f"bad regular expression {pattern!r}: {exc}") from None
    try:
        return compiled, _paths(_sre_parse.parse(pattern))
    except (ValueError, RecursionError) as exc:
        raise QueryError(f"the regular expression {pattern!r} could take exponential time "
                         f"({exc}); simplify it, or {INSTALL_HINT}") from None


def _paths(items: Any) -> Paths:
    """The match paths of a parsed (sub)pattern; ValueError where backtracking is unbounded."""
    paths = _ONE
    for op, arg in items:
        kind = str(op)
        if kind in _SINGLE:
            continue
        if kind == "SUBPATTERN":
            paths = _times(paths, _paths(arg[-1]))
        elif kind == "ATOMIC_GROUP":
            paths = _times(paths, _paths(arg))
        elif kind in ("ASSERT", "ASSERT_NOT"):
            paths = _times(paths, _paths(arg[1]))
        elif kind == "BRANCH":
            alternatives = (0,)
            for alternative in arg[1]:
                alternatives = _plus(alternatives, _paths(alternative))
            paths = _times(paths, alternatives)
        elif kind in _REPEATS:
            paths = _times(paths, _repeat(*arg))
        elif kind in ("GROUPREF", "GROUPREF_EXISTS"):
            raise ValueError("it uses a backreference")
        else:
            raise ValueError(f"it uses {kind}")
    return paths


def _repeat(low: int, high: int, body: Any) -> Paths:
    inner = _paths(body)
    if high == low:  # a fixed count: the body's paths, that many times over
        paths = _ONE
        for _ in range(min(low, 64) if inner != _ONE else 0):  # 2**64 is past any cap
            paths = _times(paths, inner)
        return paths
    if inner != _ONE:
        raise ValueError("it repeats a part that can match in more than one way")
    choices = high - low + 1
    return (choices,) if high != _UNBOUNDED and choices <= _SMALL_REPEAT else (0, 1)
