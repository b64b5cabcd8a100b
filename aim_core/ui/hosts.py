"""The `Host` header check that keeps DNS rebinding away from a local dashboard.

A web page on `evil.example` can make its name resolve to 127.0.0.1 and then read the
dashboard as if it were its own site; its requests still carry `Host: evil.example`. So
the dashboard answers only to loopback names, the address it listens on, names given with
`--allowed-host`, and IP addresses: a browser sends an IP literal as the Host only when
it connects to that very IP, which no other site's page can make it do for a name.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def host_name(header: str) -> str:
    """The host part of a Host header: `[::1]:8080` -> `::1`, `Name.:80` -> `name`."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    if header.count(":") == 1:
        header = header.split(":", 1)[0]
    return header.rstrip(".")


def is_ip(name: str) -> bool:
    """True for an IPv4 or IPv6 literal."""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostCheck:
    """ASGI middleware answering 403 to a request whose Host is not allowed."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = {host_name(name) for name in (*LOOPBACK_NAMES, *allowed) if name}

    def allows(self, header: str) -> bool:
        """True when the Host header names this dashboard."""
        name = host_name(header)
        return bool(name) and (name in self.allowed or is_ip(name))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            raw = dict(scope.get("headers") or []).get(b"host", b"")
            header = raw.decode("latin-1")
            if not self.allows(header):
                await refuse(scope, send, header)
                return
        await self.app(scope, receive, send)


async def refuse(scope: Scope, send: Send, header: str) -> None:
    """Send the 403 answer (JSON under /api/, text elsewhere)."""
    name = host_name(header) or "(none)"
    message = (f"Host {name!r} is not allowed: this dashboard answers only to localhost, "
               "its own address and IP addresses, which protects it from DNS rebinding. "
               f"If {name!r} is really this machine, restart with --allowed-host {name}.")
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    if scope.get("path", "").startswith("/api/"):
        body, kind = json.dumps({"error": message}).encode(), b"application/json"
    else:
        body, kind = message.encode(), b"text/plain; charset=utf-8"
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
