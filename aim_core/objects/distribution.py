"""``Distribution``: a histogram (bin counts over an even range), stored as float64 counts.

The histogram is computed in the constructor: it is the small copy (at most 512 counts) of
samples that may be a whole layer's weights.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import Encoded, ObjectElement

MAX_BINS = 512
_COUNT_DTYPE = np.dtype("<f8")


class Distribution(ObjectElement):
    """Aim's ``Distribution(samples=None, bin_count=64, *, hist=None, bin_range=None)``.

    Give ``samples`` (any array-like, torch tensors too; NaN and inf are left out and
    counted in ``json()["non_finite"]``) or a ready histogram ``hist`` with its
    ``bin_range=(start, end)``. ``distribution=`` is the older name of ``samples``.
    """

    kind = "distribution"
    __slots__ = ()

    def __init__(self, samples: Any = None, bin_count: int = 64, *, hist: Any = None,
                 bin_range: Any = None, distribution: Any = None) -> None:
        if samples is None:
            samples = distribution
        elif distribution is not None:
            raise ValueError("Give samples or distribution, not both.")
        if samples is not None:
            if hist is not None:
                raise ValueError("Give samples or hist, not both.")
            counts, lo, hi, skipped = _histogram(samples, bin_count)
        elif hist is not None:
            if bin_range is None:
                raise ValueError("A hist needs bin_range=(start, end).")
            counts = _checked_counts(hist)
            lo, hi, skipped = *_checked_range(bin_range), 0
        else:
            raise ValueError("Give samples (or distribution) or hist with bin_range.")
        if not 1 <= len(counts) <= MAX_BINS:
            raise ValueError(f"bin_count must be between 1 and {MAX_BINS}, got {len(counts)}.")
        self._init_source((counts, lo, hi, skipped))

    @classmethod
    def from_histogram(cls, hist: Any, bin_range: Any) -> Distribution:
        """A distribution from bin counts and their ``(start, end)`` range."""
        return cls(hist=hist, bin_range=bin_range)

    @classmethod
    def from_samples(cls, samples: Any, bin_count: int = 64) -> Distribution:
        """A distribution from samples, binned into ``bin_count`` even bins."""
        return cls(samples=samples, bin_count=bin_count)

    def _encode(self, source: Any) -> Encoded:
        counts, lo, hi, skipped = source
        meta = {"bin_count": len(counts), "range": [lo, hi]}
        if skipped:
            meta["non_finite"] = skipped
        return meta, counts.astype(_COUNT_DTYPE, copy=False).tobytes()

    @property
    def bin_count(self) -> int:
        """Number of bins."""
        return self.meta["bin_count"]

    @property
    def range(self) -> list[float]:
        """``[start, end]`` of the bins."""
        return list(self.meta["range"])

    @property
    def weights(self) -> np.ndarray:
        """Bin counts (float64)."""
        return np.frombuffer(self._bytes(), dtype=_COUNT_DTYPE, count=self.bin_count)

    @property
    def ranges(self) -> np.ndarray:
        """The ``bin_count + 1`` bin edges."""
        lo, hi = self.range
        return np.linspace(lo, hi, num=self.bin_count + 1)

    def to_np_histogram(self) -> tuple[np.ndarray, np.ndarray]:
        """``(counts, edges)`` as ``np.histogram`` returns them."""
        return self.weights, self.ranges

    def json(self) -> dict[str, Any]:
        """Bin count and range, as Aim's ``Distribution.json()``."""
        return dict(self.meta)


def _as_numpy(values: Any) -> np.ndarray:
    if hasattr(values, "detach") and type(values).__module__.startswith("torch"):
        values = values.detach()
        if values.is_floating_point() and values.dtype.itemsize < 4:
            values = values.float()
        values = values.cpu().numpy()
    return np.asarray(values)


def _histogram(samples: Any, bin_count: int) -> tuple[np.ndarray, float, float, int]:
    if not isinstance(bin_count, (int, np.integer)) or not 1 <= bin_count <= MAX_BINS:
        raise ValueError(f"bin_count must be an int between 1 and {MAX_BINS}, got {bin_count!r}.")
    values = _as_numpy(samples).reshape(-1)
    if values.dtype.kind not in "uifb":
        raise TypeError(f"Distribution samples must be numbers, got dtype {values.dtype}.")
    skipped = 0
    if values.dtype.kind == "f":
        finite = np.isfinite(values)
        if not finite.all():
            skipped = int(len(values) - np.count_nonzero(finite))
            values = values[finite]
    if len(values) and not math.isfinite(float(values.max()) - float(values.min())):
        raise ValueError(f"Distribution samples span [{values.min()}, {values.max()}], which is "
                         "wider than float64 can bin; scale them, or give hist= with bin_range=.")
    counts, edges = np.histogram(values, bins=int(bin_count))
    return counts.astype(_COUNT_DTYPE), float(edges[0]), float(edges[-1]), skipped


def _checked_counts(hist: Any) -> np.ndarray:
    """Ready bin counts as float64; ValueError unless every count is finite and >= 0."""
    counts = np.array(_as_numpy(hist), dtype=_COUNT_DTYPE).reshape(-1)
    bad = ~(np.isfinite(counts) & (counts >= 0))
    if bad.any():
        raise ValueError("Distribution hist counts must be finite and not negative; bin "
                         f"{int(np.argmax(bad))} is {counts[bad][0]}.")
    return counts


def _checked_range(bin_range: Any) -> tuple[float, float]:
    """``(start, end)`` of ready bins; ValueError unless finite with start < end."""
    lo, hi = float(bin_range[0]), float(bin_range[-1])
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"Distribution bin_range must be finite (start, end) with start < end, "
                         f"got ({lo}, {hi}).")
    if not math.isfinite(hi - lo):
        raise ValueError(f"Distribution bin_range ({lo}, {hi}) is wider than float64 can bin; "
                         "scale the values.")
    return lo, hi
