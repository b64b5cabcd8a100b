"""Many client processes writing many runs through one server at once."""

from __future__ import annotations

import json

import numpy as np
from remote_helpers import start_client

from aim_core import Repo
from aim_core.remote.server_storage import applied_points


def test_eight_processes_times_three_runs_write_at_once_without_loss(server):
    clients = [start_client(server.url, "--runs", "3", "--points", "2000", "--sleep", "0.0005",
                            "--tag", f"c{i}") for i in range(8)]
    hashes = []
    for client in clients:
        out, err = client.communicate(timeout=240)
        assert client.returncode == 0, err
        assert "Warning" not in err and "Error" not in err, err
        hashes.extend(json.loads(out.strip().splitlines()[-1])["hashes"])
    assert len(set(hashes)) == 24
    repo = Repo(server.url)
    runs = {run.hash: run for run in repo.iter_runs()}
    assert set(runs) == set(hashes)
    for run_hash in hashes:
        run = runs[run_hash]
        assert run.status == "finished"
        for name, context in (("loss", {"subset": "train"}), ("acc", {})):
            metric = run.get_metric(name, context)
            assert np.array_equal(metric.steps, np.arange(2000)), (run_hash, name)
        assert applied_points(Repo(server.repo), run_hash) == 4000  # each point applied once
        loss = run.get_metric("loss", {"subset": "train"})
        assert loss.values.tolist() == [float(i) for i in range(2000)]
        assert loss.epochs.tolist() == [float(i // 100) for i in range(2000)]
    assert sorted(r["hparams"]["client"] for r in runs.values()) == sorted(
        f"c{i}" for i in range(8) for _ in range(3))
