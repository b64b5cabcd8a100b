"""aim-core: a small, fast experiment tracker with Aim's SDK."""

from .objects import Audio, Distribution, Figure, Image, Text
from .repo import Repo
from .run import Run
from .sequence import Metric

__all__ = ["Audio", "Distribution", "Figure", "Image", "Metric", "Repo", "Run", "Text"]
__version__ = "0.1.0"
