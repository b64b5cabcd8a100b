"""``aim-core reindex``: rebuild the catalog ``index.sqlite`` from the run files."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .repos import existing_repo


def add_command(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register ``reindex`` on the ``aim-core`` parser."""
    parser = commands.add_parser(
        "reindex", parents=[common],
        help="rebuild the catalog (index.sqlite) from the run files",
        description="Rebuild the repo's catalog from its run files: after the catalog was "
                    "damaged, truncated or deleted, or to pick up runs copied in by hand. "
                    "Stop the processes writing to the repo first.")
    parser.set_defaults(handler=cmd_reindex)


def cmd_reindex(args: argparse.Namespace) -> int:
    """aim-core reindex [--repo PATH]"""
    repo = existing_repo(getattr(args, "repo", None))
    count, damaged = repo.reindex()
    print(f"Rebuilt the catalog of {repo.path}: {count} run(s).")
    if damaged:
        print(f"{len(damaged)} run file(s) are damaged and listed as corrupted: "
              f"{' '.join(damaged)}", file=sys.stderr)
    return 0
