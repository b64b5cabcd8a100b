"""Reading object sequences: steps as numpy, elements built (and their bytes read) lazily.

``Images``, ``Texts``, ``Distributions``, ``Audios``, ``Figures`` and ``LogRecords`` share
``ObjectSequence``: ``seq.data.items()`` yields ``(step, (value, epoch, timestamp))`` where
``value`` is the element, or the list tracked at that step, as in Aim.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..context import Context
from ..storage.object_chunks import (
    ObjectColumns,
    PayloadReader,
    StoredPoint,
    latest_per_step,
)
from .base import EncodedPoint, ObjectElement, Payload, element_class

if TYPE_CHECKING:
    from ..run import Run

Loader = Callable[[], tuple[ObjectColumns, PayloadReader | None]]


class ObjectSequence:
    """One object sequence of a run: ``(name, context)``, its steps and elements."""

    kind: ClassVar[str] = ""
    _registry: ClassVar[dict[str, type[ObjectSequence]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__ and cls.kind:  # a subclass of Text is not the text type
            ObjectSequence._registry[cls.kind] = cls

    def __init__(self, run: Run | None, name: str, context: dict[str, Any],
                 summary: dict[str, Any] | None, loader: Loader) -> None:
        self.run = run
        self.name = name
        self.context = Context(context)
        self._summary = summary  # from the catalog; None for a live run
        self._loader = loader
        self._columns: ObjectColumns | None = None
        self._reader: PayloadReader | None = None

    def __repr__(self) -> str:
        run_hash = getattr(self.run, "hash", None)
        return (f"<{type(self).__name__} {self.name} {self.context.to_dict()} "
                f"of run {run_hash}>")

    @classmethod
    def sequence_name(cls) -> str:
        """Aim's plural name of the type: ``"images"``, ``"texts"``, ..."""
        return cls.__name__.lower()

    def _load(self) -> ObjectColumns:
        if self._columns is None:
            columns, self._reader = self._loader()
            self._columns = latest_per_step(columns)
        return self._columns

    # -- columns ---------------------------------------------------------------------------
    @property
    def steps(self) -> np.ndarray:
        """Steps (int64), ascending, one per tracked step."""
        return self._load()[0]

    @property
    def epochs(self) -> np.ndarray:
        """Epochs (float64), NaN where none was given."""
        return self._load()[2]

    @property
    def timestamps(self) -> np.ndarray:
        """Unix times (float64 seconds) at which each point was tracked."""
        return self._load()[3]

    def _figure(self, key: str) -> Any:
        if self._summary is not None and self._columns is None:
            return self._summary.get(key)
        steps = self._load()[0]
        if key == "count":
            return len(steps)
        if not len(steps):
            return None
        return int(steps[0]) if key == "first_step" else int(steps[-1])

    @property
    def count(self) -> int:
        """Number of distinct steps."""
        return self._figure("count") or 0

    @property
    def first_step(self) -> int | None:
        """The lowest step."""
        return self._figure("first_step")

    @property
    def last_step(self) -> int | None:
        """The highest step."""
        return self._figure("last_step")

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return self.count > 0

    # -- elements --------------------------------------------------------------------------
    def value_at(self, index: int) -> Any:
        """The element (or list) of the ``index``-th step, its bytes not yet read."""
        return self._value(self._load()[1][index])

    def _value(self, point: Any) -> Any:
        if isinstance(point, StoredPoint):
            cls, reader = element_class(self.kind), self._reader
            elements = [cls.from_storage(meta, _lazy(reader, where, offset, length), copy=False)
                        for meta, where, offset, length in point.elements]
            return elements if point.is_list else elements[0]
        if isinstance(point, EncodedPoint):
            cls = element_class(self.kind)
            elements = [cls.from_storage(meta, data) for meta, data in point.elements]
            return elements if point.is_list else elements[0]
        if isinstance(point, ObjectElement):
            return point
        return list(point)  # a live list: the caller's copy stays untouched

    def stored_records(self, index: int) -> list[Any] | None:
        """Metadata and payload location of each element at the ``index``-th step, without
        reading a payload (``ElementRecord``s); None for a live, not yet stored point."""
        point = self._load()[1][index]
        return list(point.elements) if isinstance(point, StoredPoint) else None

    def record_length(self) -> int | None:
        """The longest list tracked at one step (1 for single elements); None when empty."""
        points = self._load()[1]
        if not len(points):
            return None
        return max(_point_length(p) for p in points.tolist())

    @property
    def data(self) -> ObjectData:
        """Aim's accessor: ``seq.data.items()``, ``.numpy()``, ``.sample(k)``, ``.range()``."""
        return ObjectData(self, None)

    @property
    def values(self) -> SparseValues:
        """Aim's ``seq.values``: ``.sparse_list()``, ``.values_list()``, ``.first()``, ..."""
        return SparseValues(self, None)


def _lazy(reader: PayloadReader | None, where: str, offset: int, length: int) -> Payload:
    if not where:
        return Payload.of(b"")
    if reader is None:
        raise ValueError("this sequence was loaded without a payload reader")
    return Payload(lambda: reader.read(where, offset, length), length)


def _point_length(point: Any) -> int:
    if isinstance(point, (StoredPoint, EncodedPoint)):
        return len(point.elements) if point.is_list else 1
    return len(point) if isinstance(point, (list, tuple)) else 1


class ObjectData:
    """``seq.data``: the points of a sequence (or a range/sample of them)."""

    def __init__(self, seq: ObjectSequence, index: np.ndarray | None) -> None:
        self._seq, self._index = seq, index

    def _indices(self) -> np.ndarray:
        if self._index is None:
            return np.arange(len(self._seq.steps))
        return self._index

    def items(self) -> Iterator[tuple[int, tuple[Any, float | None, float]]]:
        """Yield ``(step, (value, epoch, timestamp))``; epoch is None where none was given."""
        seq, index = self._seq, self._indices()
        all_steps, _, all_epochs, all_times = seq._load()
        steps, times = all_steps[index].tolist(), all_times[index].tolist()
        epochs = all_epochs[index].tolist()
        for n, i in enumerate(index.tolist()):
            epoch = epochs[n]
            yield steps[n], (seq.value_at(i), None if math.isnan(epoch) else epoch, times[n])

    __iter__ = items

    def values(self) -> Iterator[Any]:
        """Yield each step's element (or list)."""
        for i in self._indices().tolist():
            yield self._seq.value_at(i)

    def indices(self) -> Iterator[int]:
        """Yield the steps."""
        yield from self.indices_list()

    def items_list(self) -> tuple[list[int], list[list[Any]]]:
        """``(steps, [values, epochs, timestamps])`` as lists."""
        steps, (values, epochs, times) = self.numpy()
        return steps.tolist(), [list(values), epochs.tolist(), times.tolist()]

    def values_list(self) -> list[Any]:
        """Every step's element (or list)."""
        return list(self.values())

    def indices_list(self) -> list[int]:
        """The steps."""
        return self._seq.steps[self._indices()].tolist()

    def numpy(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """``(steps, [values (object array), epochs, timestamps])``."""
        (steps, _, epochs, times), index = self._seq._load(), self._indices()
        values = np.empty(len(index), dtype=object)
        for out, i in enumerate(index.tolist()):
            values[out] = self._seq.value_at(i)
        return steps[index], [values, epochs[index], times[index]]

    def range(self, start: int, stop: int) -> ObjectData:
        """The points with ``start <= step < stop``."""
        steps = self._seq.steps
        index = self._indices()
        mask = (steps[index] >= start) & (steps[index] < stop)
        return ObjectData(self._seq, index[mask])

    def sample(self, k: int) -> ObjectData:
        """At most ``k`` points, evenly spread, keeping the first and the last."""
        index = self._indices()
        if k <= 0 or len(index) <= k:
            return self
        keep = np.unique(np.linspace(0, len(index) - 1, k).round().astype(np.int64))
        return ObjectData(self._seq, index[keep])

    def __len__(self) -> int:
        return len(self._indices())


class SparseValues:
    """``seq.values``: values indexed by step, as Aim's ``ArrayView``."""

    def __init__(self, seq: ObjectSequence, index: np.ndarray | None) -> None:
        self._data = ObjectData(seq, index)
        self._seq = seq

    def sparse_list(self) -> tuple[list[int], list[Any]]:
        """``(steps, values)`` as lists."""
        return self._data.indices_list(), self._data.values_list()

    def sparse_numpy(self) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, values)`` as numpy arrays (values of dtype object)."""
        steps, (values, _, _) = self._data.numpy()
        return steps, values

    def indices_list(self) -> list[int]:
        """The steps."""
        return self._data.indices_list()

    def values_list(self) -> list[Any]:
        """The values."""
        return self._data.values_list()

    def values_numpy(self) -> np.ndarray:
        """The values as an object array."""
        return self.sparse_numpy()[1]

    def indices_numpy(self) -> np.ndarray:
        """The steps as int64."""
        return self._seq.steps.copy()

    tolist = values_list
    keys = indices_list

    def items(self) -> Iterator[tuple[int, Any]]:
        """Yield ``(step, value)``."""
        yield from zip(self._data.indices_list(), self._data.values(), strict=False)

    def __iter__(self) -> Iterator[Any]:
        return self._data.values()

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, position: int) -> Any:
        n = len(self._seq.steps)
        if not -n <= position < n:
            raise IndexError(f"position {position} out of range for {n} values")
        return self._seq.value_at(position % n)

    def first(self) -> tuple[int, Any]:
        """``(step, value)`` of the lowest step."""
        return int(self._seq.steps[0]), self[0]

    def last(self) -> tuple[int, Any]:
        """``(step, value)`` of the highest step."""
        return int(self._seq.steps[-1]), self[-1]

    def first_idx(self) -> int:
        """The lowest step."""
        return self.first()[0]

    def last_idx(self) -> int:
        """The highest step."""
        return self.last()[0]

    def first_value(self) -> Any:
        """The value of the lowest step."""
        return self[0]

    def last_value(self) -> Any:
        """The value of the highest step."""
        return self[-1]


class Images(ObjectSequence):
    """A sequence of ``Image`` elements (or lists of them)."""

    kind = "image"


class Texts(ObjectSequence):
    """A sequence of ``Text`` elements (or lists of them)."""

    kind = "text"


class Distributions(ObjectSequence):
    """A sequence of ``Distribution`` elements (or lists of them)."""

    kind = "distribution"


class Audios(ObjectSequence):
    """A sequence of ``Audio`` elements (or lists of them)."""

    kind = "audio"


class Figures(ObjectSequence):
    """A sequence of ``Figure`` elements (or lists of them)."""

    kind = "figure"


class LogRecords(ObjectSequence):
    """The ``run.log_*`` messages of a run (sequence ``__log_records``)."""

    kind = "log_record"

    @classmethod
    def sequence_name(cls) -> str:
        """Aim's name of the type."""
        return "log_records"


def sequence_class(kind: str) -> type[ObjectSequence]:
    """The reading class of an object kind."""
    try:
        return ObjectSequence._registry[kind]
    except KeyError:
        raise ValueError(f"Unknown object kind {kind!r}; known: "
                         f"{sorted(ObjectSequence._registry)}") from None
