"""Object types tracked as sequences: ``Text``, ``Image``, ``Distribution``, ``Audio``,
``Figure`` and ``LogRecord``, and the classes that read their sequences back.

Each name is imported on first use (``import aim_core`` stays light for metric-only
training); none of Pillow, torch, plotly or matplotlib is imported until an element needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

OBJECT_KINDS = ("text", "image", "distribution", "audio", "figure", "log_record")

_WHERE = {
    "Text": "text", "Image": "image", "Distribution": "distribution", "Audio": "audio",
    "Figure": "figure", "LogRecord": "log_record", "LOG_RECORDS": "base",
    "EncodedPoint": "base", "ObjectElement": "base", "Payload": "base",
    "element_class": "base", "encode_point": "base", "kind_of": "base",
    "Images": "sequence", "Texts": "sequence", "Distributions": "sequence",
    "Audios": "sequence", "Figures": "sequence", "LogRecords": "sequence",
    "ObjectSequence": "sequence", "sequence_class": "sequence",
}

__all__ = ["LOG_RECORDS", "OBJECT_KINDS", *sorted(k for k in _WHERE if k != "LOG_RECORDS")]


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first access."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
