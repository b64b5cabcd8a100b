"""``aim-core server``: the tracking server that owns one repo (extra ``[remote]``)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..remote.security import is_loopback, read_token_file
from ..remote.urls import DEFAULT_PORT, is_remote_url
from ..repo import default_repo_path

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_command(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register ``server`` on the ``aim-core`` parser."""
    server = commands.add_parser(
        "server", parents=[common], help="run the tracking server (extra [remote])",
        description="Own a repo and accept runs from clients: "
                    f'Run(repo="aim://HOST:{DEFAULT_PORT}"). The repo is created if missing.')
    server.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    server.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    server.add_argument("--token-file", metavar="F",
                        help="file holding the token every request must carry")
    server.add_argument("--ssl-keyfile", metavar="K", help="TLS private key (PEM)")
    server.add_argument("--ssl-certfile", metavar="C", help="TLS certificate (PEM)")
    server.add_argument("--ui", action="store_true", help="also serve the dashboard at /")
    server.add_argument("--insecure", action="store_true",
                        help="allow a non-loopback --host without a token")
    server.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="a DNS name clients use for this server (needed without a token)")
    server.add_argument("--max-body-mb", type=float, default=64.0, metavar="MB",
                        help="largest request body accepted (default 64)")
    server.set_defaults(handler=cmd_server)


def cmd_server(args: argparse.Namespace) -> int:
    """aim-core server [--repo PATH] [--host H] [--port P] [--token-file F] [--ui] ..."""
    from .commands import CommandError

    token = None
    if args.token_file:
        try:
            token = read_token_file(args.token_file)
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot use token file: {exc}", EXIT_USAGE) from None
    if token is None and not is_loopback(args.host) and not args.insecure:
        raise CommandError(
            f"refusing to listen on {args.host} without a token: anyone who can reach it could "
            "write and read runs. Pass --token-file F (clients set AIM_CORE_TOKEN), or "
            "--insecure to accept that.", EXIT_USAGE)
    if bool(args.ssl_keyfile) != bool(args.ssl_certfile):
        raise CommandError("--ssl-keyfile and --ssl-certfile go together", EXIT_USAGE)
    if not 0 <= args.port <= 65535:
        raise CommandError(f"--port {args.port} is not a TCP port: give 1 to 65535, or 0 for a "
                           "free one", EXIT_USAGE)
    if args.max_body_mb < 1:
        raise CommandError("--max-body-mb must be at least 1", EXIT_USAGE)
    try:
        from ..remote.serve import serve
    except ImportError as exc:
        raise CommandError(f"the server needs the [remote] extra ({exc}): "
                           "pip install 'aim-core[remote]'") from None
    repo_path = getattr(args, "repo", None) or default_repo_path()
    if is_remote_url(os.fspath(repo_path)):
        raise CommandError(f"--repo (or AIM_CORE_REPO) is the server URL {repo_path}; the "
                           "server needs a folder: --repo PATH", EXIT_USAGE)
    if token is None and not is_loopback(args.host):
        print(f"Warning: no token; anyone who reaches {args.host} can read and write runs.",
              file=sys.stderr)
    try:
        serve(os.fspath(repo_path), args.host, args.port, token=token, ui=args.ui,
              ssl_keyfile=args.ssl_keyfile, ssl_certfile=args.ssl_certfile,
              max_body=int(args.max_body_mb * (1 << 20)), allowed_hosts=args.allowed_host,
              announce=lambda line: print(line, flush=True))
    except OSError as exc:
        raise CommandError(str(exc)) from None
    return EXIT_OK
