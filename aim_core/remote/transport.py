"""HTTP to one tracking server (httpx): batches, heartbeats and read requests.

Errors are sorted for the sender: ``Unreachable`` (no connection, timeout, 5xx, a refused
token: retry later, keep the batch) and ``Rejected`` (the server read the request and will
never accept it: 400, 404, 409, 413).
"""

from __future__ import annotations

import json
import os
import ssl
from typing import Any

import httpx

from .. import __version__
from ..errors import RemoteError
from .protocol import BATCH_TYPE, decode_series
from .urls import base_url, token_from_env

API = "/remote/v1"
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 120.0


class Unreachable(Exception):
    """The request did not get a definite answer; try again later (``status`` if any)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Rejected(Exception):
    """The server refused the request for good; ``status`` is the HTTP code, ``kind`` the
    name of the server's error class."""

    def __init__(self, status: int, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.status, self.kind = status, kind


class Transport:
    """A thread-safe HTTP client of one server, with its token and TLS settings."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = base_url(url)
        self.token = token_from_env(token)
        # A close() waited its whole timeout for this server in vain, and no request has
        # reached it since: the next closes wait only briefly (N runs must not take N x 30 s).
        self.silent_since_close = False
        headers = {"User-Agent": f"aim-core/{__version__}"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        timeout = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
        # A plain-HTTP server needs no TLS context (building one costs ~40 ms); redirects are
        # never followed, so such a client cannot end up talking TLS.
        verify = _verify() if self.url.startswith("https://") else False
        self._client = httpx.Client(base_url=self.url + API, headers=headers, timeout=timeout,
                                    verify=verify, trust_env=False)

    def __repr__(self) -> str:
        return f"<Transport {self.url}>"

    # -- writes ------------------------------------------------------------------------------
    def send_batch(self, run_hash: str, body: bytes) -> dict[str, Any]:
        """POST one batch; returns the server's JSON answer once the batch is durable."""
        return self._json(self._request("POST", f"/runs/{run_hash}/batches", content=body,
                                        headers={"Content-Type": BATCH_TYPE}))

    def heartbeat(self, run_hash: str, session: str, interval: float) -> None:
        """Tell the server the session is alive (and sends at least every ``interval`` s)."""
        self._request("POST", f"/runs/{run_hash}/heartbeat",
                      params={"session": session, "interval": interval})

    # -- reads -------------------------------------------------------------------------------
    def get(self, path: str, **params: Any) -> Any:
        """GET a JSON resource; ``RemoteError`` when the server cannot be reached."""
        return self._json(self._read("GET", path, params=params))

    def series(self, run_hash: str, name: str, context: dict[str, Any]) -> Any:
        """The stored points of one sequence, as columns."""
        response = self._read("GET", f"/runs/{run_hash}/series",
                              params={"name": name, "context": json.dumps(context)})
        return decode_series(response.content)

    def _read(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._request(method, path, **kwargs)
        except Unreachable as exc:
            if exc.status == 401:
                raise RemoteError(f"aim-core server {self.url} refused the token ({exc}); "
                                  "pass token= or set AIM_CORE_TOKEN") from None
            if exc.status == 403:
                raise RemoteError(f"aim-core server {self.url} refused the request: {exc}"
                                  ) from None
            raise RemoteError(f"aim-core server {self.url} cannot be reached ({exc}); "
                              "is `aim-core server` running there?") from None
        except Rejected as exc:
            raise _read_error(exc) from None

    # -- plumbing ----------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise Unreachable(f"{type(exc).__name__}: {exc}") from None
        if response.status_code < 300:
            return response
        message, kind = _error_of(response)
        if response.status_code in (401, 403, 429) or response.status_code >= 500:
            raise Unreachable(f"HTTP {response.status_code}: {message}", response.status_code)
        raise Rejected(response.status_code, message, kind)

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        return json.loads(response.content) if response.content else {}

    def close(self) -> None:
        """Close the connections."""
        self._client.close()


def _error_of(response: httpx.Response) -> tuple[str, str]:
    """The server's error message and error class name."""
    try:
        body = json.loads(response.content)
        return str(body.get("error", response.text)), str(body.get("type", ""))
    except (ValueError, AttributeError):
        return response.text[:500], ""


def _read_error(exc: Rejected) -> Exception:
    """The error a local repo would raise for what the server refused."""
    from .. import errors

    known = {cls.__name__: cls for cls in (errors.QuerySyntaxError, errors.QueryError,
                                           errors.RunNotFoundError)}
    if exc.kind in known:
        return known[exc.kind](str(exc))
    if exc.status == 404:
        return errors.RunNotFoundError(str(exc))
    if exc.status == 400:
        return errors.QueryError(str(exc))
    return RemoteError(str(exc))


def _verify() -> Any:
    """TLS verification: ``AIM_CORE_CA_BUNDLE`` (a CA file) when set, else the default."""
    bundle = os.environ.get("AIM_CORE_CA_BUNDLE")
    if bundle:
        return ssl.create_default_context(cafile=bundle)
    return True


_transports: dict[tuple[str, str | None], Transport] = {}


def transport_for(url: str, token: str | None = None) -> Transport:
    """This process's shared transport to a server (one connection pool per server)."""
    key = (base_url(url), token_from_env(token))
    transport = _transports.get(key)
    if transport is None:
        transport = _transports[key] = Transport(url, token)
    return transport


os.register_at_fork(after_in_child=_transports.clear)  # a child opens its own connections
