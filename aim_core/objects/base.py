"""What every tracked object shares: a cheap copy at construction, encoding on demand.

An element is built in one of two ways. The constructor (on the training thread) keeps only a
cheap copy of its input; ``to_storage()`` (on the flusher thread) turns it into JSON metadata
and payload bytes. ``from_storage(meta, payload)`` rebuilds an element that was read back; its
bytes load only when a read method needs them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, ClassVar

Encoded = tuple[dict[str, Any], bytes]
LOG_RECORDS = "__log_records"  # the sequence of run.log_* messages, as Aim names it


class Payload:
    """Bytes that are read from storage on first access, then kept."""

    __slots__ = ("_load", "_data", "length")

    def __init__(self, load: Callable[[], bytes], length: int | None = None) -> None:
        self._load, self._data, self.length = load, None, length

    @classmethod
    def of(cls, data: bytes) -> Payload:
        """A payload whose bytes are already in memory."""
        payload = cls(lambda: data, len(data))
        payload._data = data
        return payload

    def load(self) -> bytes:
        """Return the bytes, reading them the first time."""
        if self._data is None:
            self._data = bytes(self._load())
            self.length = len(self._data)
        return self._data

    @property
    def loaded(self) -> bool:
        """Whether the bytes are in memory."""
        return self._data is not None


class ObjectElement:
    """Base of Text, Image, Distribution, Audio, Figure and LogRecord.

    Subclasses set ``kind`` and implement ``_encode()`` (flusher thread: the copy taken by
    the constructor becomes ``(meta, bytes)``). Until it is encoded an element holds its
    source; afterwards, or when read back, it holds metadata and a lazy ``Payload``.
    """

    kind: ClassVar[str] = ""
    _registry: ClassVar[dict[str, type[ObjectElement]]] = {}
    _lock = threading.Lock()

    __slots__ = ("_source", "_meta", "_payload")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__ and cls.kind:  # a subclass of Text is not the text type
            ObjectElement._registry[cls.kind] = cls

    def _init_source(self, source: Any) -> None:
        self._source, self._meta, self._payload = source, None, None

    # -- the storage side ------------------------------------------------------------------
    def to_storage(self) -> Encoded:
        """Return ``(metadata, payload bytes)``, encoding the kept copy the first time.

        Safe from several threads at once (the flusher's encoders, a reader): each encodes
        the copy it read; the first to finish publishes, payload before metadata.
        """
        meta = self._meta
        if meta is None:
            source = self._source
            if source is None:  # another thread published meanwhile
                return self._meta, self._payload.load()
            meta, data = self._encode(source)
            with ObjectElement._lock:
                if self._meta is None:
                    self._payload = Payload.of(data)
                    self._meta = meta
                    self._source = None  # the encoded bytes replace the (larger) copy
        return self._meta, self._payload.load()

    def _encode(self, source: Any) -> Encoded:
        """Turn the kept copy ``source`` into ``(metadata, payload bytes)``."""
        raise NotImplementedError

    @property
    def nbytes(self) -> int:
        """About how much memory the element holds (its kept copy, or its bytes)."""
        source = self._source
        if source is not None:
            return _size_of(source)
        payload = self._payload
        return payload.length or 0 if payload is not None else 0

    @classmethod
    def from_storage(cls, meta: dict[str, Any], payload: Payload | bytes,
                     copy: bool = True) -> ObjectElement:
        """Rebuild an element from stored metadata and (lazy) payload bytes."""
        element = cls.__new__(cls)
        if not isinstance(payload, Payload):
            payload = Payload.of(bytes(payload))
        element._source, element._payload = None, payload
        element._meta = dict(meta) if copy else meta
        element._restore()
        return element

    def _restore(self) -> None:
        """Set subclass state from ``self._meta`` after ``from_storage``."""

    # -- the reading side ------------------------------------------------------------------
    @property
    def meta(self) -> dict[str, Any]:
        """The element's JSON metadata (encodes a not yet stored element)."""
        if self._meta is None:
            self.to_storage()
        return self._meta

    def _bytes(self) -> bytes:
        if self._payload is None:
            self.to_storage()
        return self._payload.load()

    def json(self) -> dict[str, Any]:
        """The metadata shown next to the element, as in Aim."""
        return dict(self.meta)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.to_storage() == other.to_storage()

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.json()}>"


def _size_of(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, (bytes, str)):
        return len(value)
    size = getattr(value, "nbytes", None)
    if isinstance(size, int):
        return size
    if isinstance(value, (tuple, list)):
        return sum(_size_of(item) for item in value)
    return 4096  # a PIL image, a figure dict: a rough guess is enough here


_MODULES = {"text": "text", "image": "image", "distribution": "distribution",
            "audio": "audio", "figure": "figure", "log_record": "log_record"}


def element_class(kind: str) -> type[ObjectElement]:
    """Return the element class of a sequence kind (``"image"``, ``"text"``, ...)."""
    if kind not in ObjectElement._registry and kind in _MODULES:
        import importlib

        importlib.import_module(f"{__package__}.{_MODULES[kind]}")
    try:
        return ObjectElement._registry[kind]
    except KeyError:
        raise ValueError(f"Unknown object kind {kind!r}; known: "
                         f"{sorted(ObjectElement._registry)}") from None


class EncodedPoint:
    """An already encoded point (a remote batch, a converter): stored as it is."""

    __slots__ = ("kind", "is_list", "elements")

    def __init__(self, kind: str, is_list: bool, elements: list[Encoded]) -> None:
        self.kind, self.is_list, self.elements = kind, is_list, elements

    def to_storage(self) -> tuple[bool, list[Encoded]]:
        """Return ``(is_list, [(meta, bytes), ...])``."""
        return self.is_list, self.elements


def is_object_value(value: Any) -> bool:
    """True for what ``track`` stores as an object point: an element, a list of elements
    (judged by its first item), or an ``EncodedPoint``."""
    if isinstance(value, (ObjectElement, EncodedPoint)):
        return True
    return isinstance(value, (list, tuple)) and bool(value) and isinstance(value[0],
                                                                            ObjectElement)


def kind_of(value: Any, name: Any = None) -> str | None:
    """The object kind of a tracked value (an element or a non-empty list of one type).

    Returns None for anything that is not an object (numbers go to metrics); raises
    TypeError, naming sequence ``name``, for a list that mixes types or holds non-elements.
    """
    if isinstance(value, (ObjectElement, EncodedPoint)):
        return value.kind
    if not isinstance(value, (list, tuple)):
        return None
    if not value:
        raise TypeError(f"Cannot track an empty list in sequence {name!r}: give at least one "
                        "element. Nothing was recorded for this call.")
    first = value[0]
    for item in value:
        if type(item) is not type(first) or not isinstance(item, ObjectElement):
            raise TypeError(
                f"A list tracked in sequence {name!r} must hold elements of one type (Text, "
                f"Image, Distribution, Audio or Figure), got {type(first).__name__} and "
                f"{type(item).__name__}. Nothing was recorded for this call.")
    return first.kind


def encode_point(value: Any) -> tuple[bool, list[Encoded]]:
    """Encode a tracked value: ``(is_list, [(meta, bytes), ...])``. Runs on the flusher."""
    from ..storage.object_chunks import encode_value

    return encode_value(list(value) if isinstance(value, tuple) else value)


def nbytes_of(value: Any) -> int:
    """About how much memory a buffered value holds (for flushing large buffers early)."""
    if isinstance(value, list):
        return sum(nbytes_of(item) for item in value)
    size = getattr(value, "nbytes", None)
    return size if isinstance(size, int) else 4096
