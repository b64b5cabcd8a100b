"""``run["__system_params"]``: installed packages, environment, git state and command line.

The keys are Aim's (``packages``, ``env_variables``, ``git_info``, ``executable``,
``arguments``), so queries written for Aim keep working. Anything that looks like a secret is
left out: environment variables whose name contains one of ``SECRET_WORDS`` or whose value is
a URL with a password, the value after a secret-looking command-line flag, and the user and
password of the git remote's URL. Git is asked locally (no network) with a short timeout.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from typing import Any

SECRET_WORDS = ("key", "token", "secret", "pass", "credential", "auth", "cookie", "private")
HIDDEN = "<hidden>"
GIT_TIMEOUT = 2.0
_URL_CREDENTIALS = re.compile(r"(?i)([a-z][a-z0-9+.-]*://)[^/@\s]+@")


def system_params(cwd: str | None = None) -> dict[str, Any]:
    """Everything Aim records with ``log_system_params=True``, secrets left out."""
    return {
        "packages": installed_packages(),
        "env_variables": environment_variables(),
        "git_info": git_info(cwd),
        "executable": sys.executable,
        "arguments": arguments(sys.argv),
    }


def looks_secret(name: str) -> bool:
    """True when a variable or flag name suggests it holds a secret."""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def installed_packages() -> dict[str, str]:
    """``{normalised name: version}`` of every installed distribution."""
    out = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name:
            out[re.sub(r"[-_.]+", "-", name).lower()] = dist.version
    return dict(sorted(out.items()))


def environment_variables(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without secret-looking names or URLs that carry a password."""
    environ = os.environ if environ is None else environ
    return {name: value for name, value in sorted(environ.items())
            if not looks_secret(name) and not _has_url_password(value)}


def _has_url_password(value: str) -> bool:
    match = _URL_CREDENTIALS.search(value)
    return bool(match) and ":" in match.group(0)[len(match.group(1)):]


def strip_url_credentials(url: str) -> str:
    """``https://user:token@host/x`` -> ``https://host/x``."""
    return _URL_CREDENTIALS.sub(r"\1", url)


def arguments(argv: list[str]) -> list[str]:
    """The command line with the values of secret-looking flags (``--api-key X``) hidden."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next and not arg.startswith("-"):
            out.append(HIDDEN)
            hide_next = False
            continue
        hide_next = False
        flag, eq, _ = arg.partition("=")
        if flag.startswith("-") and looks_secret(flag):
            if eq:
                arg = f"{flag}={HIDDEN}"
            else:
                hide_next = True
        out.append(strip_url_credentials(arg))
    return out


def git_info(cwd: str | None = None) -> dict[str, Any]:
    """Branch, remote URL and last commit of the git work tree at ``cwd``; ``{}`` outside one."""
    branch = _git(["rev-parse", "--abbrev-ref", "HEAD"], cwd)
    if branch is None:
        return {}  # not a work tree, no git, or git too slow
    remote = _git(["config", "--get", "remote.origin.url"], cwd)
    commit = _git(["log", "-1", "--date=iso-strict", "--format=%h%x1f%ad%x1f%an"], cwd)
    fields = commit.split("\x1f") if commit else []
    if len(fields) != 3:
        fields = [None, None, None]
    return {
        "branch": branch,
        "remote_origin_url": strip_url_credentials(remote) if remote else None,
        "commit": dict(zip(("hash", "timestamp", "author"), fields, strict=True)),
    }


def _git(args: list[str], cwd: str | None) -> str | None:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}
    try:
        done = subprocess.run(["git", *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=GIT_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
