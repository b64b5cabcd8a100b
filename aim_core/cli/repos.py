"""The repo a command works on, and what to type when there is none."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from ..errors import RepoNotFoundError
from ..repo import Repo


def existing_repo(path: str | os.PathLike | None) -> Repo:
    """``Repo(path)``; RepoNotFoundError with command-line advice when there is none."""
    try:
        return Repo(path)
    except RepoNotFoundError:
        raise RepoNotFoundError(missing_repo_advice(path)) from None


def missing_repo_advice(path: str | os.PathLike | None) -> str:
    """Why no repo opens at ``path`` and the commands that fix it."""
    where = Path(path if path is not None else Repo.default_repo_path()).expanduser().resolve()
    above = next((folder for folder in where.parents if Repo.exists(folder)), None)
    hint = f" The nearest repo above it is {above}: pass --repo {shlex.quote(str(above))}." \
        if above is not None else ""
    return (f"No aim-core repo at {where}.{hint} Create one with "
            f"`aim-core init {shlex.quote(str(where))}`, or point --repo (or AIM_CORE_REPO) "
            "at an existing repo.")
