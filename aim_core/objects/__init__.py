"""Object types tracked as sequences: ``Text``, ``Image``, ``Distribution``, ``Audio``,
``Figure`` and ``LogRecord``, and the classes that read their sequences back.

Importing this package imports none of Pillow, torch, plotly or matplotlib: each type
imports what it needs when it encodes or decodes.
"""

from .audio import Audio
from .base import EncodedPoint, ObjectElement, Payload, element_class, encode_point, kind_of
from .distribution import Distribution
from .figure import Figure
from .image import Image
from .log_record import LOG_RECORDS, LogRecord
from .sequence import (
    Audios,
    Distributions,
    Figures,
    Images,
    LogRecords,
    ObjectSequence,
    Texts,
    sequence_class,
)
from .text import Text

OBJECT_KINDS = ("text", "image", "distribution", "audio", "figure", "log_record")

__all__ = [
    "LOG_RECORDS", "OBJECT_KINDS", "Audio", "Audios", "Distribution", "Distributions",
    "EncodedPoint", "Figure", "Figures", "Image", "Images", "LogRecord", "LogRecords",
    "ObjectElement", "ObjectSequence", "Payload", "Text", "Texts", "element_class",
    "encode_point", "kind_of", "sequence_class",
]
