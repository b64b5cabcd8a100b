"""Checks and conversions of what ``Run.track`` accepts: numbers, steps and epochs."""

from __future__ import annotations

import math
from typing import Any

NAN = math.nan
MAX_STEP = 2**63 - 1  # steps are stored as int64
MIN_STEP = -(2**63)


def to_value(value: Any, name: Any, context: Any) -> float:
    """Return ``value`` as a float, or raise TypeError naming the sequence."""
    if isinstance(value, (bool, int, float)):
        try:
            return float(value)
        except OverflowError:
            raise ValueError(
                f"Cannot track {value} in sequence {name!r}: it does not fit a float64. "
                "Nothing was recorded for this call.") from None
    if type(value).__module__ == "numpy" or hasattr(value, "item"):
        size = getattr(value, "size", None)
        if callable(getattr(value, "numel", None)):
            size = value.numel()
        if size in (None, 1) and not isinstance(value, (str, bytes)):
            try:
                item = value.item()
            except (ValueError, TypeError, AttributeError):
                item = None
            if isinstance(item, (bool, int, float)):
                return float(item)
    raise TypeError(
        f"Cannot track {_describe(value)} in sequence {name!r} with context "
        f"{dict(context or {})!r}: track() takes an int, float, bool, or a numpy/torch scalar "
        "or size-1 array. Nothing was recorded for this call."
    )


def to_step(step: Any) -> int:
    """Return ``step`` as an int, or raise TypeError."""
    if isinstance(step, bool) or not hasattr(step, "__index__"):
        raise TypeError(f"step must be an int (or None for the next step), got {step!r}")
    return step.__index__()


def step_out_of_range(step: int, name: Any) -> ValueError:
    """The error for a step that does not fit the int64 steps are stored as."""
    return ValueError(f"step {step} of sequence {name!r} is outside the int64 range "
                      f"[{MIN_STEP}, {MAX_STEP}]; nothing was recorded for this call.")


def to_epoch(epoch: Any) -> float:
    """Return ``epoch`` as a float, or raise TypeError (ValueError when it does not fit)."""
    if isinstance(epoch, (str, bytes)):
        raise TypeError(f"epoch must be a number or None, got {epoch!r}")
    try:
        return float(epoch)
    except OverflowError:
        raise ValueError(f"epoch {epoch} does not fit a float64; nothing was recorded for "
                         "this call.") from None
    except (TypeError, ValueError):
        raise TypeError(f"epoch must be a number or None, got {epoch!r}") from None


def _describe(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"a {type(value).__name__} of shape {tuple(shape)}"
    return f"a value of type {type(value).__name__} ({value!r:.40})"
