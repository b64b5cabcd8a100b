"""Sequence contexts: small JSON dicts, a read-only view, and their canonical key."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

_SCALARS = (str, int, float, bool, type(None))


def canonical_context(context: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return a plain-dict copy of ``context``, checking it holds JSON scalars under str keys.

    ``True``, ``1`` and ``1.0`` stay different values (see :func:`context_key`); NaN and
    infinite floats are rejected, as no two of them could be told apart reliably.
    """
    if not context:
        return {}
    if not isinstance(context, Mapping):
        raise TypeError(f"context must be a dict such as {{'subset': 'train'}}, got {context!r}")
    out = {}
    for key, value in context.items():
        if not isinstance(key, str):
            raise TypeError(f"context keys must be str, got {key!r} in {dict(context)!r}")
        if type(value) not in _SCALARS:
            value = _builtin_scalar(key, value)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(
                f"context value {value!r} for key {key!r} is not a finite number; use a str "
                "such as 'nan' or leave the key out")
        out[key] = value
    return out


def _builtin_scalar(key: str, value: Any) -> Any:
    """numpy/torch scalars and subclasses of the JSON scalar types as the builtin type."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        with contextlib.suppress(ValueError, RuntimeError, TypeError):  # refused below
            value = value.item()
    for kind in (bool, str, int, float):  # bool first: it is also an int
        if isinstance(value, kind):
            return kind(value)
    if value is None:
        return None
    raise TypeError(
        f"context values must be str, int, float, bool or None; "
        f"got {type(value).__name__} for key {key!r}"
    )


def context_key(context: Mapping[str, Any]) -> str:
    """Return the stable text key of a context: JSON with sorted keys (``true``, ``1`` and
    ``1.0`` differ, so do the contexts that hold them)."""
    return json.dumps(dict(context), sort_keys=True, separators=(",", ":"))


class Context(Mapping):
    """A read-only context mapping that compares equal to the plain dict it holds."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data = dict(data or {})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        return self._data.get(key)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Context):
            return self._data == other._data
        if other is None:
            return not self._data
        if isinstance(other, Mapping):
            return self._data == dict(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(context_key(self._data))

    def __repr__(self) -> str:
        return f"Context({self._data!r})"

    def to_dict(self) -> dict[str, Any]:
        """Return a plain-dict copy."""
        return dict(self._data)

    @property
    def idx(self) -> str:
        """The context's stable key, as text."""
        return context_key(self._data)
