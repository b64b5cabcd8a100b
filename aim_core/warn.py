"""Warnings that never raise into training, even when the script runs with ``-W error``."""

from __future__ import annotations

import contextlib
import warnings


def warn_safely(message: str, stacklevel: int = 2) -> None:
    """Issue a RuntimeWarning; where that raises (-W error, stderr closed), drop it instead."""
    with contextlib.suppress(Exception):  # a Warning raised by -W error, a closed stderr
        warnings.warn(message, RuntimeWarning, stacklevel=stacklevel + 1)
