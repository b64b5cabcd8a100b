"""``run["__system_params"]``: installed packages, environment, git state and command line.

The keys are Aim's (``packages``, ``env_variables``, ``git_info``, ``executable``,
``arguments``), so queries written for Aim keep working. Anything that looks like a secret is
left out: environment variables whose name contains one of ``SECRET_WORDS`` (or has a part in
``SECRET_PARTS``), or whose value holds a URL with a user or password or a
``password=``-like setting (connection strings, signed URLs); the value after a
secret-looking command-line flag, and the user and password of URLs on the command line and
of the git remote. Git is asked locally (no network) with a short timeout.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SECRET_WORDS = ("key", "token", "secret", "pass", "cred", "auth", "cookie", "private", "jwt",
                "webhook")
SECRET_PARTS = ("pat", "pw", "pwd", "dsn", "sig", "sas")  # whole parts of a name: GITHUB_PAT
NOT_SECRET = ("PWD", "OLDPWD")  # the shell's working folders
HIDDEN = "<hidden>"
GIT_TIMEOUT = 2.0
# ``scheme://`` and its user info: ``user:password@`` up to the last ``@`` (a password
# written unencoded may hold ``/`` or ``@``; ``host:port/`` is not a password), or ``user@``.
_URL_CREDENTIALS = re.compile(
    r"(?i)([a-z][a-z0-9+.-]*://)(?:[^\s@/:]*:(?!\d+(?:[/?#]|$))\S*@|[^\s@/:]*@)")
# Tokens whose shape gives them away wherever they stand: GitHub, Hugging Face, Slack,
# OpenAI/Anthropic-style ``sk-``, AWS access key ids, GitLab, npm, PyPI, JWTs.
_KNOWN_TOKEN = re.compile(
    r"(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}|hf_[A-Za-z0-9]{20,}|xox[abposr]-[\w-]{10,}"
    r"|sk-[\w-]{20,}|A[KS]IA[0-9A-Z]{16}|glpat-[\w-]{20,}|npm_[A-Za-z0-9]{30,}"
    r"|pypi-[\w-]{50,}|eyJ[\w-]{10,}\.eyJ[\w-]{10,}\.[\w-]*)")
# ``password=x``, ``AccountKey=x``, ``&sig=x``: a secret-looking setting inside a value.
_SECRET_SETTING = re.compile(
    r"(?i)((?:^|[^a-z0-9])(?:[a-z0-9_.-]*(?:key|token|secret|pass|credential|auth)"
    r"[a-z0-9_.-]*|pwd|sig|signature))=[^\s&;,]+")


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
    if name in NOT_SECRET:
        return False
    lowered = name.lower()
    parts = re.split(r"[^a-z0-9]+", lowered)
    return any(word in lowered for word in SECRET_WORDS) or any(
        part in SECRET_PARTS for part in parts)


def installed_packages() -> dict[str, str]:
    """``{normalised name: version}`` of every distribution on ``sys.path`` (first one wins).

    Read from the ``*.dist-info``/``*.egg-info`` folder names, which carry name and version,
    so a large environment takes a millisecond instead of parsing every METADATA file.
    """
    out: dict[str, str] = {}
    for entry in sys.path:
        try:
            found = [e.name for e in os.scandir(entry or ".")
                     if e.name.endswith((".dist-info", ".egg-info"))]
        except OSError:  # a zip file, a missing folder
            continue
        for folder in sorted(found):
            name, version = _name_version(Path(entry or ".", folder))
            if name:
                out.setdefault(re.sub(r"[-_.]+", "-", name).lower(), version)
    return dict(sorted(out.items()))


def _name_version(path: Path) -> tuple[str, str]:
    stem = path.name.rsplit(".", 1)[0]
    name, _, rest = stem.partition("-")
    version = rest.split("-py")[0] if rest else ""
    if not version:  # "pkg.egg-info" of a development install: ask its metadata
        try:
            dist = importlib.metadata.PathDistribution(path)
            name, version = dist.metadata["Name"] or name, dist.version or ""
        except Exception:
            return "", ""
    return name, version


def environment_variables(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without secret-looking names or values that carry credentials."""
    environ = os.environ if environ is None else environ
    return {name: value for name, value in sorted(environ.items())
            if not looks_secret(name) and not _holds_credentials(value)}


def _holds_credentials(value: str) -> bool:
    """True for a value with a URL's user info (a token is often the user) or a secret
    setting (``Password=...;``, ``?sig=...``)."""
    return bool(_URL_CREDENTIALS.search(value) or _SECRET_SETTING.search(value)
                or _KNOWN_TOKEN.search(value))


def strip_url_credentials(url: str) -> str:
    """``https://user:token@host/x`` -> ``https://host/x``; ``?password=x`` and tokens of a
    known shape (``ghp_...``) -> hidden."""
    text = _SECRET_SETTING.sub(rf"\1={HIDDEN}", _URL_CREDENTIALS.sub(r"\1", url))
    return _KNOWN_TOKEN.sub(HIDDEN, text)


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
    branch, remote, commit = _git_all([
        ["rev-parse", "--abbrev-ref", "HEAD"],
        ["config", "--get", "remote.origin.url"],
        ["log", "-1", "--date=iso-strict", "--format=%h%x1f%ad%x1f%an"],
    ], cwd)
    if branch is None:
        return {}  # not a work tree, no git, or git too slow
    fields = commit.split("\x1f") if commit else []
    if len(fields) != 3:
        fields = [None, None, None]
    return {
        "branch": branch,
        "remote_origin_url": strip_url_credentials(remote) if remote else None,
        "commit": dict(zip(("hash", "timestamp", "author"), fields, strict=True)),
    }


def _git_all(commands: list[list[str]], cwd: str | None) -> list[str | None]:
    """Run git commands side by side; each answer's stdout, or None when it failed."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}
    procs: list[subprocess.Popen[str] | None] = []
    for args in commands:
        try:
            procs.append(subprocess.Popen(
                ["git", *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
        except OSError:  # no git
            procs.append(None)
    deadline = time.monotonic() + GIT_TIMEOUT
    return [_answer(proc, deadline) for proc in procs]


def _answer(proc: subprocess.Popen[str] | None, deadline: float) -> str | None:
    if proc is None:
        return None
    try:
        out, _ = proc.communicate(timeout=max(deadline - time.monotonic(), 0.01))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None
    return out.strip() if proc.returncode == 0 else None
