"""Shared by the converter tests: the command line in a child process, catalog snapshots."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from aim_core import Repo


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """Run ``aim-core ARGS`` in a child process; return its exit code and output."""
    code = "import sys; from aim_core.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, timeout=240, env=os.environ.copy())


def entries(repo: Repo) -> dict[str, Any]:
    """Every catalog entry of ``repo`` by hash."""
    return dict(repo.catalog_entries())


def by_name(repo: Repo) -> dict[str, Any]:
    """Every run of ``repo`` by its name."""
    return {run.name: run for run in repo.iter_runs()}
