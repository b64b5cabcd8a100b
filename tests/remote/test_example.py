"""examples/remote_ddp.py: a 2-process ddp_spawn training logs through a server as one run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lightning")

EXAMPLE = Path(__file__).parents[2] / "examples" / "remote_ddp.py"


def test_remote_ddp_example_logs_one_run_from_rank_zero(tmp_path, client_env, server):
    done = subprocess.run([sys.executable, str(EXAMPLE), "--server", server.url],
                          capture_output=True, text=True, timeout=280, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "finished, hparams {'hidden': 16, 'lr': 0.01}" in done.stdout
    assert "loss {'subset': 'train'}: 12 points" in done.stdout
    from aim_core import Repo

    runs = list(Repo(server.repo).iter_runs())
    assert len(runs) == 1 and runs[0].experiment == "remote-ddp"
    assert "aim-core:" not in done.stderr  # no warning of ours: nothing spooled or lost
