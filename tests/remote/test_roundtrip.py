"""A run tracked through the server reads back exactly like the same run tracked locally."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from remote_helpers import start_client

from aim_core import Repo, Run
from aim_core.errors import RemoteError, RunNotFoundError
from aim_core.remote.repo import RemoteRepo
from aim_core.remote.run import RemoteRun


def train(repo) -> str:
    """Everything the SDK writes: params, props, tags, metrics, dict tracking, close, resume."""
    run = Run(repo=repo, experiment="cmp", system_tracking_interval=None,
              capture_terminal_logs=False)
    run["hparams"] = {"lr": 1e-3, "layers": [64, 32], "opt": {"name": "adam", "beta": 0.9},
                      "nan": math.nan}
    run["hparams", "lr"] = 3e-4
    run["seed"] = 7
    del run["seed"]
    run.name = "remote-vs-local"
    run.description = "same calls, two repos"
    run.add_tag("a")
    run.add_tag("b")
    run.remove_tag("a")
    for step in range(250):
        run.track(1.0 / (step + 1), name="loss", step=step, epoch=step // 50,
                  context={"subset": "train"})
        if step % 10 == 0:
            run.track({"loss": 0.5 - step / 1000, "acc": step / 250}, context={"subset": "val"})
    run.track(float("nan"), name="odd")
    run.track(float("inf"), name="odd")
    run.track(True, name="odd", context={"flag": True})
    run_hash = run.hash
    run.close()
    again = Run(run_hash, repo=repo, system_tracking_interval=None, capture_terminal_logs=False)
    # resumed: default steps continue where they stopped
    for _ in range(5):
        again.track(9.0, name="loss", context={"subset": "train"})
    again["hparams", "resumed"] = True
    again.close(status="failed")
    return run_hash


def snapshot(repo, run_hash: str) -> dict:
    """What a reader sees of one run, timestamps aside."""
    run = repo.get_run(run_hash)
    metrics = {}
    for metric in run.metrics():
        key = (metric.name, tuple(sorted(metric.context.items())))
        metrics[key] = {"steps": metric.steps.tolist(), "values": metric.values.tolist(),
                        "epochs": metric.epochs.tolist(), "count": metric.count,
                        "last": metric.last, "min": metric.min, "max": metric.max,
                        "n_times": len(metric.timestamps)}
    return {"params": run.params, "name": run.name, "description": run.description,
            "experiment": run.experiment, "tags": run.tags, "status": run.status,
            "active": run.active, "archived": run.archived, "metrics": metrics}


def same(a, b) -> bool:
    """Equality that treats NaN as equal to NaN, inside nested data."""
    return repr(a) == repr(b)


def test_remote_run_reads_back_like_a_local_one(server, tmp_path):
    started = time.time()
    local_hash = train(tmp_path / "local")
    remote_hash = train(server.url)
    local = snapshot(Repo(tmp_path / "local"), local_hash)
    through_api = snapshot(Repo(server.url), remote_hash)
    on_server_disk = snapshot(Repo(server.repo), remote_hash)
    assert same(through_api, local)
    assert same(on_server_disk, local)
    assert local["status"] == "failed" and local["metrics"][("loss", (("subset", "train"),))][
        "steps"][-5:] == [250, 251, 252, 253, 254]
    times = Repo(server.url).get_run(remote_hash).get_metric("loss", {"subset": "train"})
    assert started <= times.timestamps.min() <= times.timestamps.max() <= time.time()


def test_queries_listings_and_summaries_match(server, tmp_path):
    train(tmp_path / "local")
    train(server.url)
    local, remote = Repo(tmp_path / "local"), Repo(server.url)
    assert isinstance(remote, RemoteRepo)
    for query in ("", 'run.hparams.opt.name == "adam"', "run.hparams.lr < 1e-3"):
        assert len(local.query_runs(query)) == len(remote.query_runs(query)) == 1
    assert len(remote.query_runs("run.hparams.lr > 1")) == 0
    query = 'metric.name == "loss" and metric.context.subset == "val"'
    local_metrics = [(m.name, m.context.to_dict(), m.values.tolist())
                     for m in local.query_metrics(query)]
    remote_metrics = [(m.name, m.context.to_dict(), m.values.tolist())
                      for m in remote.query_metrics(query)]
    assert remote_metrics == local_metrics and len(remote_metrics) == 1
    assert remote.collect_params_info() == local.collect_params_info() or same(
        remote.collect_params_info(), local.collect_params_info())
    assert remote.collect_sequence_info() == local.collect_sequence_info()
    assert [r.name for r in remote.iter_runs()] == ["remote-vs-local"]


def test_bad_queries_and_unknown_runs_raise_as_locally(server):
    repo = Repo(server.url)
    from aim_core.errors import QueryError, QuerySyntaxError

    with pytest.raises(QuerySyntaxError, match="column|position|syntax|invalid"):
        repo.query_runs("run.hparams.lr >")
    with pytest.raises(QueryError):
        repo.query_runs("__import__('os')")
    assert repo.get_run("nosuchrun") is None and repo.get_run("../x") is None  # as locally
    with pytest.raises(RunNotFoundError):
        Run("nosuchrun", repo=server.url)
    with pytest.raises(RemoteError, match="read-only"):
        repo.delete_run("nosuchrun")


def test_live_remote_run_reads_its_own_points_and_blocks_a_second_writer(server):
    run = Run(repo=server.url)
    assert isinstance(run, RemoteRun) and run.status == "running"
    for step in range(10):
        run.track(step * 2.0, name="x")
    assert run.get_metric("x").values.tolist() == [s * 2.0 for s in range(10)]
    assert Repo(server.url).get_run(run.hash).status == "running"
    second = start_client(server.url, "--resume", run.hash, "--points", "1")
    assert second.wait(timeout=60) != 0
    assert "RunLockedError" in second.stderr.read()
    run.close()
    assert Repo(server.url).get_run(run.hash).status == "finished"


def test_reopening_a_run_just_closed_keeps_one_ordered_stream(server):
    run = Run(repo=server.url)
    run.track(1.0, name="x")
    run.close()
    again = Run(run.hash, repo=server.url)
    again.track(2.0, name="x")
    again.close()
    metric = Repo(server.url).get_run(run.hash).get_metric("x")
    assert metric.steps.tolist() == [0, 1] and metric.values.tolist() == [1.0, 2.0]
    assert np.isnan(metric.epochs).all()


def test_dashboard_is_served_from_the_same_port(server_factory):
    server = server_factory("--ui")
    with Run(repo=server.url, experiment="ui") as run:
        run.track(1.0, name="loss")
    import httpx

    with httpx.Client(base_url=server.http) as http:
        page = http.get("/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        runs = http.get("/api/runs").json()["runs"]
        assert [r["hash"] for r in runs] == [run.hash]
        assert http.get("/remote/v1/info").json()["server"] == "aim-core"


def test_aim_core_repo_env_may_name_a_server(server, monkeypatch):
    monkeypatch.setenv("AIM_CORE_REPO", server.url)
    with Run(experiment="from-env") as run:  # no repo argument: scripts and adapters unchanged
        run.track(3.0, name="x")
    assert isinstance(run, RemoteRun)
    for repo in (Repo(), Repo.default_repo()):
        assert isinstance(repo, RemoteRepo)
        assert repo.get_run(run.hash).experiment == "from-env"


def test_a_closed_remote_run_leaves_no_sending_thread(server):
    import threading

    run = Run(repo=server.url)
    run.track(1.0, name="x")
    run.close()
    deadline = time.time() + 5
    while any(t.name == f"aim-core-sender-{run.hash}" for t in threading.enumerate()):
        assert time.time() < deadline, [t.name for t in threading.enumerate()]
        time.sleep(0.02)


def test_device_values_are_converted_before_they_travel(server):
    torch = pytest.importorskip("torch")
    from aim_core import deferred

    deferred.defer_cpu_tensors(True)  # CPU tensors take the accelerator's deferred path
    try:
        with Run(repo=server.url) as run:
            for step in range(50):
                run.track(torch.tensor(step / 2), name="loss", step=step)
    finally:
        deferred.defer_cpu_tensors(False)
    values = Repo(server.url).get_run(run.hash).get_metric("loss").values
    assert values.tolist() == [step / 2 for step in range(50)]
