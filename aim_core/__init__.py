"""aim-core: a small, fast experiment tracker with Aim's SDK."""

from typing import Any

from .repo import Repo
from .run import Run
from .sequence import Metric

__all__ = ["Metric", "QueryReportMode", "Repo", "Run"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``QueryReportMode`` loads the query package only when asked for."""
    if name == "QueryReportMode":
        from .query.results import QueryReportMode

        return QueryReportMode
    raise AttributeError(f"module 'aim_core' has no attribute {name!r}")
