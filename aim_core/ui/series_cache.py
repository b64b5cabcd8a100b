"""Sampled metric points kept between requests while their sequence is unchanged.

Regrouping, changing the aggregation or the live refresh of a chart asks for the same
sequences again; a sequence whose catalog summary (count, last step and value) has not
changed is answered from memory instead of opening its run file again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

MAX_POINTS = 2_000_000
"""Points (of all cached series together) kept at most; the least recently used go first."""


class SeriesCache:
    """A bounded LRU of `key -> (version, value, size)`; a stale version is a miss."""

    def __init__(self, max_points: int = MAX_POINTS) -> None:
        self.max_points = max_points
        self._items: OrderedDict[Hashable, tuple[Any, Any, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable, version: Any) -> Any:
        """The cached value of `key` if it was stored with `version`, else None."""
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] != version:
                return None
            self._items.move_to_end(key)
            return item[1]

    def put(self, key: Hashable, version: Any, value: Any, size: int) -> None:
        """Store `value` (holding `size` points) for `key` at `version`."""
        if size > self.max_points:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= old[2]
            self._items[key] = (version, value, size)
            self._size += size
            while self._size > self.max_points:
                _, (_, _, dropped) = self._items.popitem(last=False)
                self._size -= dropped

    def __len__(self) -> int:
        return len(self._items)
