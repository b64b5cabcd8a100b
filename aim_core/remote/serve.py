"""Run the tracking server with uvicorn until Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import uvicorn

from ..ui.server import bind  # the dashboard's: a busy port fails before anything is printed
from .app import DEFAULT_MAX_BODY, create_app
from .urls import DEFAULT_PORT


def serve(repo_path: str | os.PathLike[str], host: str = "127.0.0.1", port: int = DEFAULT_PORT,
          *, token: str | None = None, ui: bool = False, ssl_keyfile: str | None = None,
          ssl_certfile: str | None = None, max_body: int = DEFAULT_MAX_BODY,
          allowed_hosts: Iterable[str] = (), announce: Any = print) -> None:
    """Serve the repo at ``repo_path``; ``port=0`` picks a free port (announced)."""
    app = create_app(repo_path, token=token, ui=ui, max_body=max_body,
                     allowed_hosts=(host, *allowed_hosts))
    sock = bind(host, port)
    scheme = "https" if ssl_certfile else "http"
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    announce(f"aim-core server for {os.fspath(repo_path)} on {scheme}://{shown}:{bound_port}")
    client_url = f"{scheme}://{shown}:{bound_port}" if ssl_certfile else f"aim://{shown}:{bound_port}"
    announce(f'Clients: Run(repo="{client_url}")' + ("  (token required)" if token else ""))
    if ui:
        announce(f"Dashboard: {scheme}://{shown}:{bound_port}/" +
                 ("?token=<token>" if token else ""))
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                            ssl_keyfile=ssl_keyfile, ssl_certfile=ssl_certfile,
                            timeout_keep_alive=75)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
