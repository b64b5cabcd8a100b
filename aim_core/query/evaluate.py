"""AimQL evaluation: the ``run`` view over a catalog entry and the None-safe operators.

A compiled query calls these helpers instead of Python's own attribute access, item
access, ordering comparisons, ``in`` and arithmetic, so that a missing param or context
key is ``None`` everywhere: access on None gives None, ``None < 1`` is False, and
arithmetic or a builtin with a None operand gives None. Any other failure (``1 / 0``,
``int("x")``, ``run.name + 1``) propagates, and the caller reports it as a ``QueryError``
naming the run: a wrong query never looks like "no runs". The helpers look only into plain
JSON data (dict, list, str, numbers) and the views below; they never call ``getattr`` on
an arbitrary object.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

from ..errors import QueryError
from .limits import (
    checked_add,
    checked_join,
    checked_mod,
    checked_mul,
    checked_pow,
    checked_replace,
    checked_round,
    checked_str,
)
from .patterns import regex_function

_RUN_PROPS = ("name", "description", "experiment", "tags", "creation_time", "end_time",
              "active", "archived")
_DATETIME_ATTRS = frozenset({"year", "month", "day", "hour", "minute", "second"})
STR_METHODS = frozenset({
    "startswith", "endswith", "lower", "upper", "strip", "lstrip", "rstrip", "split", "rsplit",
    "replace", "find", "rfind", "count", "isdigit", "isalpha", "isalnum", "isnumeric",
    "isdecimal", "islower", "isupper", "isspace", "title", "capitalize", "casefold", "swapcase",
    "removeprefix", "removesuffix", "partition", "rpartition", "splitlines", "join",
})
DICT_METHODS = frozenset({"get", "keys", "values", "items"})
METHOD_NAMES = STR_METHODS | DICT_METHODS
RE_FUNCTIONS = frozenset({"match", "search", "fullmatch"})
# name -> (min, max) number of arguments, checked when the query is parsed
FUNCTION_ARITY = {
    "len": (1, 1), "abs": (1, 1), "round": (1, 2), "min": (1, 99), "max": (1, 99),
    "sum": (1, 1), "any": (1, 1), "all": (1, 1), "str": (1, 1), "int": (1, 1),
    "float": (1, 1), "bool": (1, 1), "datetime": (3, 7),
    "re.match": (2, 2), "re.search": (2, 2), "re.fullmatch": (2, 2),
}


class MetricsView:
    """``run.metrics``: look up a sequence summary by ``[name]`` or ``[name, context]``."""

    __slots__ = ("_sequences",)

    def __init__(self, sequences: list[dict[str, Any]]) -> None:
        self._sequences = sequences

    def item(self, key: Any) -> dict[str, Any] | None:
        """Return the summary of ``name`` (empty context) or ``(name, context)``, or None."""
        name, context = (key[0], key[1] if len(key) > 1 else None) if type(key) is tuple else (
            key, None)
        context = context or {}
        for summary in self._sequences:
            if summary.get("name") == name and summary.get("context", {}) == context:
                return summary
        return None

    def __contains__(self, key: Any) -> bool:
        if type(key) is tuple:
            return self.item(key) is not None
        return any(s.get("name") == key for s in self._sequences)

    def __len__(self) -> int:
        return len(self._sequences)

    def __repr__(self) -> str:
        return f"<metrics of {len(self._sequences)} sequences>"


class RunView:
    """``run`` in a query: properties, params and sequence summaries of one catalog entry."""

    __slots__ = ("hash", "_entry", "_status_of", "_status")

    def __init__(self, run_hash: str, entry: dict[str, Any],
                 status_of: Callable[[str, dict[str, Any]], str] | None = None) -> None:
        self.hash, self._entry, self._status_of, self._status = run_hash, entry, status_of, None

    def attr(self, name: str) -> Any:
        """Return property ``name``, else the top-level param ``name``, else None."""
        getter = _RUN_GETTERS.get(name)
        if getter is not None:
            return getter(self)
        return self._entry.get("params", {}).get(name)

    def item(self, key: Any) -> Any:
        """Return the param at ``key`` (a str or a tuple path), or None."""
        params = self._entry.get("params", {})
        return _path(params, key) if type(key) is tuple else _gi(params, key)

    def status(self) -> str | None:
        """The run's status, computed once."""
        if self._status is None and self._status_of is not None:
            self._status = self._status_of(self.hash, self._entry)
        return self._status if self._status is not None else self._entry["props"].get("status")

    def __contains__(self, key: Any) -> bool:
        return _in(key, self._entry.get("params", {}))

    def __repr__(self) -> str:
        return f"<run {self.hash}>"


def _prop(name: str) -> Callable[[RunView], Any]:
    return lambda view: view._entry["props"].get(name)


def _created_at(view: RunView) -> datetime | None:
    created = view._entry["props"].get("creation_time")
    return None if created is None else datetime.fromtimestamp(created, tz=timezone.utc)


def _duration(view: RunView) -> float | None:
    props = view._entry["props"]
    created = props.get("creation_time")
    if created is None:
        return None
    return (props.get("end_time") or time.time()) - created


_RUN_GETTERS: dict[str, Callable[[RunView], Any]] = {name: _prop(name) for name in _RUN_PROPS}
_RUN_GETTERS.update(
    hash=lambda view: view.hash,
    created_at=_created_at,
    duration=_duration,
    status=RunView.status,
    metrics=lambda view: MetricsView(view._entry.get("sequences", [])),
)


def _ga(obj: Any, name: str) -> Any:
    """``obj.name`` in a query: a dict key, a run attribute, a datetime field; else None."""
    kind = type(obj)
    if kind is dict:
        return obj.get(name)
    if kind is RunView:
        return obj.attr(name)
    if kind is datetime and name in _DATETIME_ATTRS:
        return getattr(obj, name)
    return None


def _gi(obj: Any, key: Any) -> Any:
    """``obj[key]`` in a query: None when missing or of the wrong type."""
    kind = type(obj)
    if kind is dict:
        if type(key) is tuple:
            return _path(obj, key)
        try:
            return obj.get(key)
        except TypeError:  # unhashable key
            return None
    if kind is RunView or kind is MetricsView:
        return obj.item(key)
    if kind is list or kind is tuple or kind is str:
        try:
            return obj[key]
        except (IndexError, TypeError):
            return None
    return None


def _path(obj: Any, keys: tuple) -> Any:
    for key in keys:
        obj = _gi(obj, key)
        if obj is None:
            return None
    return obj


_BOUNDED_METHODS: dict[str, Callable[..., Any]] = {"join": checked_join,
                                                   "replace": checked_replace}


def _method(obj: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """``obj.name(...)``: str methods on str, dict methods on dict, None otherwise."""
    kind = type(obj)
    if kind is str and name in STR_METHODS:
        bounded = _BOUNDED_METHODS.get(name)
        if bounded is not None:
            return bounded(obj, *args, **kwargs)
        return getattr(obj, name)(*args, **kwargs)
    if kind is dict and name in DICT_METHODS:
        result = getattr(obj, name)(*args, **kwargs)
        return result if name == "get" else [list(r) if type(r) is tuple else r for r in result]
    return None


def _ordering(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def safe(a: Any, b: Any) -> bool:
        try:
            return compare(a, b)
        except TypeError:  # None or mismatched types: the comparison is false
            return False
    return safe


_lt, _le = _ordering(operator.lt), _ordering(operator.le)
_gt, _ge = _ordering(operator.gt), _ordering(operator.ge)


def _in(item: Any, container: Any) -> bool:
    if container is None:
        return False
    try:
        return item in container
    except TypeError:
        return False


def _not_in(item: Any, container: Any) -> bool:
    return not _in(item, container)


_COMPARE = {"lt": _lt, "le": _le, "gt": _gt, "ge": _ge, "in": _in, "not_in": _not_in,
            "eq": operator.eq, "ne": operator.ne, "is": operator.is_, "is_not": operator.is_not}


def _chain(names: tuple[str, ...], *values: Any) -> bool:
    """A chained comparison such as ``0 < run.lr <= 1``."""
    return all(_COMPARE[name](values[i], values[i + 1]) for i, name in enumerate(names))


def _arith(apply: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def safe(a: Any, b: Any) -> Any:
        return None if a is None or b is None else apply(a, b)
    return safe


def _unary(apply: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def safe(a: Any) -> Any:
        return None if a is None else apply(a)
    return safe


def _none_safe(function: Callable[..., Any], name: str | None = None) -> Callable[..., Any]:
    """A builtin that gives None for a None argument (a missing param)."""
    def safe(*args: Any, **kwargs: Any) -> Any:
        if any(a is None for a in args):
            return None
        return function(*args, **kwargs)
    safe.__name__ = name or function.__name__
    return safe


def _datetime(*args: int) -> datetime:
    """``datetime(2024, 1, 31)`` in a query: a UTC time to compare ``run.created_at`` with."""
    try:
        return datetime(*args, tzinfo=timezone.utc)
    except (TypeError, ValueError) as exc:
        raise QueryError(f"bad datetime{args}: {exc}") from None


def iter_builtins() -> Iterator[tuple[str, Any]]:
    """The callables a query may name."""
    for function in (len, abs, min, max, sum, any, all, int, float, bool):
        yield function.__name__, _none_safe(function)
    yield "round", _none_safe(checked_round, "round")
    yield "str", _none_safe(checked_str, "str")
    yield "datetime", _datetime


EVAL_GLOBALS: dict[str, Any] = {
    "__builtins__": {},
    **dict(iter_builtins()),
    "_ga": _ga, "_gi": _gi, "_method": _method, "_slice": slice, "_chain": _chain,
    "_lt": _lt, "_le": _le, "_gt": _gt, "_ge": _ge, "_in": _in, "_not_in": _not_in,
    "_add": _arith(checked_add), "_sub": _arith(operator.sub),
    "_mul": _arith(checked_mul), "_div": _arith(operator.truediv),
    "_floordiv": _arith(operator.floordiv), "_mod": _arith(checked_mod),
    "_pow": _arith(checked_pow),
    "_neg": _unary(operator.neg), "_pos": _unary(operator.pos),
    **{f"_re_{name}": regex_function(name) for name in RE_FUNCTIONS},
}
