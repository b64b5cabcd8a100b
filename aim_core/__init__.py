"""aim-core: a small, fast experiment tracker with Aim's SDK."""

from typing import Any

from .repo import Repo
from .run import Run
from .sequence import Metric

__all__ = ["Audio", "Distribution", "Figure", "Image", "Metric", "QueryReportMode", "Repo", "Run",
           "Text"]
__version__ = "0.1.0"


_OBJECTS = ("Audio", "Distribution", "Figure", "Image", "Text")


def __getattr__(name: str) -> Any:
    """``QueryReportMode`` and the object types load only when asked for."""
    if name == "QueryReportMode":
        from .query.results import QueryReportMode

        return QueryReportMode
    if name in _OBJECTS:
        from . import objects

        return getattr(objects, name)
    raise AttributeError(f"module 'aim_core' has no attribute {name!r}")
