"""``AimLogger`` for the standalone ``pytorch_lightning`` 2.x package (see ``lightning.py``)."""

from aim_core.integrations.lightning import logger_class

AimLogger = logger_class("pytorch_lightning", __name__)

__all__ = ["AimLogger"]
