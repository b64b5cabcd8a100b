"""The server's guards: the token on every request, the body size limit, safe listening.

With a token, a request passes with ``Authorization: Bearer <token>``, or with the
``aim_core_token`` cookie a browser gets by opening any page once with ``?token=<token>``
(then redirected to the same page without it). Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

COOKIE = "aim_core_token"
Scope = dict[str, Any]


def read_token_file(path: str | Path) -> str:
    """The token in ``path``: its text without surrounding white space (an HTTP header cannot
    carry it, so a client could never match it); ValueError if empty or not printable ASCII."""
    token = Path(path).read_text(encoding="utf-8").strip()
    if not token:
        raise ValueError(f"token file {path} is empty; put a long random string in it "
                         "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe())'`)")
    if not (token.isascii() and token.isprintable()):
        raise ValueError(f"token file {path} holds characters an HTTP header cannot carry; use "
                         "printable ASCII (e.g. `python -c 'import secrets; "
                         "print(secrets.token_urlsafe())'`)")
    return token


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def same_token(given: str | None, token: str) -> bool:
    """Constant-time comparison of a presented token with the server's."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


class TokenGuard:
    """ASGI middleware: 401 for any HTTP request without the token; 413 for a body too big."""

    def __init__(self, app: Any, token: str | None, max_body: int) -> None:
        self.app, self.token, self.max_body = app, token, max_body

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return await _reply(send, 413, f"request body over the server's limit of "
                                           f"{self.max_body} bytes")
        if self.token is None:
            return await self.app(scope, receive, send)
        if same_token(_bearer(scope), self.token) or same_token(_cookie(scope), self.token):
            return await self.app(scope, receive, send)
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if same_token(query.get("token"), self.token) and scope["method"] == "GET":
            return await _set_cookie_and_redirect(scope, send, query, self.token)
        await _reply(send, 401, "missing or wrong token: send 'Authorization: Bearer <token>' "
                                "(clients: AIM_CORE_TOKEN or token=); in a browser open the "
                                "page once with ?token=<token>",
                     [(b"www-authenticate", b"Bearer")])


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _bearer(scope: Scope) -> str | None:
    value = _header(scope, b"authorization")
    if value and value[:7].lower() == "bearer ":
        return value[7:].strip()
    return None


def _cookie(scope: Scope) -> str | None:
    for part in (_header(scope, b"cookie") or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return unquote(value)
    return None


async def _reply(send: Any, status: int, message: str,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


async def _set_cookie_and_redirect(scope: Scope, send: Any, query: dict[str, str],
                                   token: str) -> None:
    rest = urlencode({k: v for k, v in query.items() if k != "token"})
    path = "/" + (scope.get("root_path", "") + scope["path"]).lstrip("/\\")  # not //host
    location = path + (f"?{rest}" if rest else "")
    secure = "; Secure" if scope.get("scheme") == "https" else ""
    cookie = f"{COOKIE}={quote(token, safe='')}; Path=/; HttpOnly; SameSite=Strict{secure}"
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", location.encode()), (b"set-cookie", cookie.encode()),
                            (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
