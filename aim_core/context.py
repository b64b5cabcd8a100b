"""Sequence contexts: small JSON dicts, a read-only view, and their canonical key."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

_SCALARS = (str, int, float, bool, type(None))


def canonical_context(context: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return a plain-dict copy of ``context``, checking it holds JSON scalars under str keys."""
    if not context:
        return {}
    if not isinstance(context, Mapping):
        raise TypeError(f"context must be a dict such as {{'subset': 'train'}}, got {context!r}")
    out = {}
    for key, value in context.items():
        if not isinstance(key, str):
            raise TypeError(f"context keys must be str, got {key!r} in {dict(context)!r}")
        if hasattr(value, "item") and not isinstance(value, _SCALARS):
            value = value.item()  # numpy/torch scalars
        if not isinstance(value, _SCALARS):
            raise TypeError(
                f"context values must be str, int, float, bool or None; "
                f"got {type(value).__name__} for key {key!r}"
            )
        out[key] = value
    return out


def context_key(context: Mapping[str, Any]) -> str:
    """Return the stable text key of a context: JSON with sorted keys."""
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
