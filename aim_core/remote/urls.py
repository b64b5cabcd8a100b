"""Server URLs: ``aim://host:port`` (plain HTTP), ``http://`` and ``https://``."""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlsplit

DEFAULT_PORT = 53800
SCHEMES = ("aim://", "http://", "https://")


def is_remote_url(repo: Any) -> bool:
    """True when ``repo`` is a server URL rather than a path."""
    return isinstance(repo, str) and repo.lower().startswith(SCHEMES)


def remote_url_of(repo: Any) -> str | None:
    """The server URL ``repo`` names: itself, or ``AIM_CORE_REPO`` when ``repo`` is None."""
    if repo is None:
        repo = os.environ.get("AIM_CORE_REPO")
    return repo if is_remote_url(repo) else None


def base_url(url: str) -> str:
    """The HTTP base URL of a server: ``aim://h:p`` becomes ``http://h:p``; no trailing slash."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("aim", "http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not a server URL; use aim://host:{DEFAULT_PORT}, "
                         "http://host:port or https://host:port")
    port = parts.port or (DEFAULT_PORT if scheme == "aim" else None)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = f"{host}:{port}" if port else host
    path = parts.path.rstrip("/")
    return f"{'https' if scheme == 'https' else 'http'}://{netloc}{path}"


def server_key(url: str) -> str:
    """A file-name-safe name of a server (its spool folder)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", base_url(url).split("://", 1)[1]).strip("_")


def token_from_env(token: str | None) -> str | None:
    """The token given, else ``AIM_CORE_TOKEN``, else None; without surrounding white space
    (``AIM_CORE_TOKEN="$(cat token.txt)"`` of a file with a trailing space still works)."""
    token = (token or os.environ.get("AIM_CORE_TOKEN") or "").strip()
    return token or None
