"""``LogRecord``: one message of ``run.log_info/log_warning/log_error/log_debug``."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from .base import Encoded, ObjectElement


class LogRecord(ObjectElement):
    """A log message with its level, time, caller (file, line) and extra values."""

    kind = "log_record"
    __slots__ = ()

    def __init__(self, message: str, level: int, timestamp: float | None = None,
                 logger_info: tuple[str, int] | None = None, **kwargs: Any) -> None:
        meta: dict[str, Any] = {
            "message": str(message),
            "log_level": int(level),
            "timestamp": time.time() if timestamp is None else float(timestamp),
        }
        if logger_info is not None:
            meta["logger_info"] = [str(logger_info[0]), int(logger_info[1])]
        if kwargs:
            meta["extra_args"] = dict(kwargs)
        self._init_source(meta)

    def _encode(self, source: Any) -> Encoded:
        meta = dict(source)
        if "extra_args" in meta:
            meta["extra_args"] = _plain(meta["extra_args"])
        return meta, b""

    def _fields(self) -> dict[str, Any]:
        source = self._source  # read once: the flusher may encode meanwhile
        return source if source is not None else self.meta

    @property
    def message(self) -> str:
        """The message text."""
        return self._fields()["message"]

    @property
    def level(self) -> int:
        """The ``logging`` level number (``logging.INFO``, ...)."""
        return self._fields()["log_level"]

    @property
    def level_name(self) -> str:
        """The level's name, such as ``"INFO"``."""
        return logging.getLevelName(self.level)

    @property
    def timestamp(self) -> float:
        """When the message was logged (Unix seconds)."""
        return self._fields()["timestamp"]

    @property
    def extra_args(self) -> dict[str, Any]:
        """The keyword arguments given with the message."""
        return dict(self._fields().get("extra_args") or {})

    @property
    def logger_info(self) -> tuple[str, int] | None:
        """``(file, line)`` of the call that logged the message."""
        info = self._fields().get("logger_info")
        return tuple(info) if info else None

    def json(self) -> dict[str, Any]:
        """Message, level name, timestamp and extra args, as Aim's ``LogRecord.json()``."""
        return {"message": self.message, "log_level": self.level_name,
                "timestamp": self.timestamp, "args": self._fields().get("extra_args")}


def _plain(value: Any) -> Any:
    """A JSON copy of ``value``; what JSON cannot hold (inf, objects) is kept as its str()."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
