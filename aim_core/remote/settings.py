"""Numbers the remote client reads from the environment, checked once where they are read.

A typo in a variable (``AIM_CORE_HEARTBEAT_INTERVAL=10s``) or a value the server refuses
(a heartbeat over an hour) must not stop training or make the server refuse every batch:
such a value warns once and the default is used.
"""

from __future__ import annotations

import math
import os

from ..warn import warn_safely

_warned: set[str] = set()


def env_number(name: str, default: float, low: float, high: float) -> float:
    """``float(os.environ[name])`` when set and within ``[low, high]``, else ``default``."""
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if low <= value <= high:
        return value
    if name not in _warned:
        _warned.add(name)
        warn_safely(f"aim-core: {name}={text!r} is not a number from {low:g} to {high:g}; "
                    f"using {default:g}.", stacklevel=3)
    return default
