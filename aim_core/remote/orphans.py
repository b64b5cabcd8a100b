"""Replaying spools left behind by client processes that ended before their server was back.

The first remote run a process opens for a server starts one background thread that sends
the orphaned spool files of that server in order and deletes them once acknowledged. Each
batch carries its idempotency key, so a batch the server already had is not applied twice.
A spool the server refuses for good is renamed ``*.spool.rejected`` and left for a person.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from ..warn import warn_safely
from .spool import Spool, orphans, spool_root
from .transport import Rejected, Transport, Unreachable
from .urls import server_key

RETRY_MAX = 30.0
_started: set[str] = set()
_lock = threading.Lock()


def replay_in_background(transport: Transport) -> None:
    """Start (once per process and server) the thread that replays orphaned spools."""
    folder = spool_root() / server_key(transport.url)
    with _lock:
        if str(folder) in _started or not folder.is_dir():
            return
        _started.add(str(folder))
    threading.Thread(target=replay_folder, args=(transport, folder), daemon=True,
                     name="aim-core-spool-replay").start()


def replay_folder(transport: Transport, folder: Path) -> int:
    """Send every orphaned spool in ``folder``; return how many were fully delivered."""
    delivered = 0
    for spool in orphans(folder):
        run_hash = spool.path.name[: -len(".spool")].rsplit("-", 1)[0]
        if replay(transport, run_hash, spool):
            delivered += 1
    return delivered


def replay(transport: Transport, run_hash: str, spool: Spool) -> bool:
    """Send one spool's records in order, retrying while the server is away."""
    wait = 0.5
    while not spool.empty:
        head = spool.first()
        if head is None:
            break
        try:
            transport.send_batch(run_hash, head[1])
        except Unreachable:
            time.sleep(wait)
            wait = min(wait * 2, RETRY_MAX)
            continue
        except Rejected as exc:
            rejected = spool.path.with_name(spool.path.name + ".rejected")
            spool.close()
            os.replace(spool.path, rejected)
            warn_safely(f"aim-core: server {transport.url} refused the spooled batches "
                        f"of run {run_hash} ({exc.status}: {exc}); they are kept in "
                        f"{rejected}.", stacklevel=2)
            return False
        spool.pop()
        wait = 0.5
    spool.remove()
    return True
