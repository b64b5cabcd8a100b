"""Serve the dashboard with uvicorn until Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Iterable

import uvicorn

from aim_core.ui.api.handler import QUERY_SECONDS
from aim_core.ui.app import create_app

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 43800


def bind(host: str, port: int) -> socket.socket:
    """Bind a listening socket now, so a busy port fails before the URL is printed."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = exc.strerror or exc
        raise OSError(f"Cannot listen on {host}:{port} ({reason}); pick another --port.") from exc
    sock.listen(128)
    return sock


def url_of(sock: socket.socket) -> str:
    """The http URL a bound socket answers on."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def serve(
    repo_path: str | os.PathLike[str],
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    allow_writes: bool = False,
    allowed_hosts: Iterable[str] = (),
    query_seconds: float = QUERY_SECONDS,
) -> None:
    """Serve the dashboard of the repo at `repo_path`, print its URL, run until interrupted.

    Raises `aim_core.errors.RepoNotFoundError` when there is no repo, `OSError` when the
    port is taken. `port=0` picks a free port (the printed URL shows which). Requests must
    name the dashboard in their Host header: localhost, an IP address, `host` itself or one
    of `allowed_hosts` (see `aim_core.ui.hosts`). An API answer taking longer than
    `query_seconds` is given up with a 503.
    """
    app = create_app(repo_path, allow_writes=allow_writes,
                     allowed_hosts=(host, *allowed_hosts), query_seconds=query_seconds)
    sock = bind(host, port)
    threading.Thread(target=app.state.dashboard.warm, name="aim-core-warm", daemon=True).start()
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    mode = "read-write" if allow_writes else "read-only"
    print(f"aim-core dashboard ({mode}) for {os.fspath(repo_path)}", flush=True)
    print(f"Open {url_of(sock)}  (Ctrl-C to stop)", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"Warning: listening on {host}, reachable from other machines.", file=sys.stderr)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
