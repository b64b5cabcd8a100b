"""``SequenceArray``: one column of a sequence as a numpy array with Aim's ``ArrayView`` reads.

``metric.values``, ``metric.epochs`` and ``metric.timestamps`` are these arrays: numpy code
uses them as it would any float64 array, and Aim code calls ``values.sparse_numpy()``,
``.values_list()``, ``.last()`` and the rest. The sparse indices are the steps. Anything
derived from one (a slice, a ufunc result, a reduction) is a plain ``ndarray`` or scalar.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class SequenceArray(np.ndarray):
    """A sequence column sorted by step, knowing the step of each element."""

    _steps: np.ndarray | None

    def __new__(cls, values: Any, steps: np.ndarray) -> SequenceArray:
        """Wrap ``values`` (one per step of ``steps``) without copying them."""
        array = np.asarray(values).view(cls)
        if len(array) != len(steps):
            raise ValueError(f"{len(array)} values for {len(steps)} steps")
        array._steps = np.asarray(steps)
        return array

    def __array_finalize__(self, obj: Any) -> None:
        self._steps = None  # a copy or view made by numpy does not know its steps

    def __array_wrap__(self, out: np.ndarray, context: Any = None,
                       return_scalar: bool = False) -> Any:
        plain = out.view(np.ndarray)
        return plain[()] if return_scalar else plain

    def __getitem__(self, key: Any) -> Any:
        item = super().__getitem__(key)
        return item.view(np.ndarray) if isinstance(item, SequenceArray) else item

    def __reduce__(self) -> Any:
        return (np.asarray, (self.view(np.ndarray),))  # pickles as a plain array

    def _indices(self) -> np.ndarray:
        if self._steps is None:
            raise ValueError("this array was derived from a sequence column and lost its steps; "
                             "call the method on metric.values itself")
        return self._steps

    # -- Aim's ArrayView reads -----------------------------------------------------------
    def indices_numpy(self) -> np.ndarray:
        """The steps, as an int64 array."""
        return self._indices()

    def values_numpy(self) -> np.ndarray:
        """The values, as a plain numpy array."""
        return self.view(np.ndarray)

    def sparse_numpy(self) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, values)`` as numpy arrays."""
        return self._indices(), self.view(np.ndarray)

    def indices_list(self) -> list[int]:
        """The steps, as a list of int."""
        return self._indices().tolist()

    def values_list(self) -> list[Any]:
        """The values, as a list."""
        return self.tolist()

    def sparse_list(self) -> tuple[list[int], list[Any]]:
        """``(steps, values)`` as lists."""
        return self._indices().tolist(), self.tolist()

    def indices(self) -> Any:
        """Iterate over the steps."""
        return iter(self.indices_list())

    def first(self) -> tuple[int, Any]:
        """``(step, value)`` of the lowest step; IndexError when empty."""
        return self.first_idx(), self.first_value()

    def first_idx(self) -> int:
        """The lowest step."""
        return int(self._indices()[0])

    def first_value(self) -> Any:
        """The value at the lowest step."""
        return self.view(np.ndarray)[0].item()

    def last(self) -> tuple[int, Any]:
        """``(step, value)`` of the highest step; IndexError when empty."""
        return self.last_idx(), self.last_value()

    def last_idx(self) -> int:
        """The highest step."""
        return int(self._indices()[-1])

    def last_value(self) -> Any:
        """The value at the highest step."""
        return self.view(np.ndarray)[-1].item()
