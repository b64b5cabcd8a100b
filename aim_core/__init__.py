"""aim-core: a small, fast experiment tracker with Aim's SDK."""

from .repo import Repo
from .run import Run
from .sequence import Metric

__all__ = ["Metric", "Repo", "Run"]
__version__ = "0.1.0"
