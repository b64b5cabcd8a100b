"""JSON answers and the mapping of errors to HTTP codes, shared by the server's endpoints."""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
import sys
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..errors import (
    AimCoreError,
    QueryError,
    RunCorruptedError,
    RunLockedError,
    RunNotFoundError,
)
from .live_runs import SessionConflict
from .protocol import BatchError


class Json(Response):
    """A JSON response that keeps NaN and inf (params may hold them; clients are Python)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Serialise compactly."""
        return json.dumps(content, separators=(",", ":")).encode()


class BadRequest(Exception):
    """A request argument is malformed (400)."""


class TooLarge(Exception):
    """The request body is over the limit (413)."""


def error(status: int, exc: BaseException | str) -> Json:
    """A JSON error body ``{"error": message, "type": error class}``."""
    body = {"error": str(exc)}
    if isinstance(exc, BaseException):
        body["type"] = type(exc).__name__
    return Json(body, status_code=status)


def status_of_error(exc: BaseException) -> int:
    """The HTTP code for an error raised while serving a request."""
    if isinstance(exc, (BatchError, BadRequest, QueryError, ValueError, TypeError)):
        return 400
    if isinstance(exc, RunNotFoundError):
        return 404
    if isinstance(exc, (SessionConflict, RunLockedError)):
        return 409
    if isinstance(exc, TooLarge):
        return 413
    return 503


EXPECTED = (BatchError, BadRequest, TooLarge, AimCoreError, SessionConflict, ValueError,
            TypeError, OSError, sqlite3.Error)


def answer_error(exc: BaseException) -> Json:
    """The response for an error; unexpected ones are logged and answered 503 (retry)."""
    status = status_of_error(exc)
    if status == 503 and not isinstance(exc, RunCorruptedError):
        with contextlib.suppress(OSError, ValueError):  # stderr on a full disk, a closed tty
            print(f"aim-core server: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    return error(status, exc)


def endpoint(handler: Callable[[Request], Any]) -> Callable[[Request], Response]:
    """Wrap a synchronous handler: JSON its result, map errors to codes."""

    @functools.wraps(handler)
    def wrapped(request: Request) -> Response:
        try:
            result = handler(request)
        except EXPECTED as exc:
            return answer_error(exc)
        return result if isinstance(result, Response) else Json(result)

    return wrapped
