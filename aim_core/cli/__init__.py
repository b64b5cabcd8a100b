"""The ``aim-core`` command: one module per command group."""

from .commands import main

__all__ = ["main"]
