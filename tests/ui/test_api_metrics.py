"""The metric search behind the Metrics page: grouping, aggregation, x-axes, sampling."""

from __future__ import annotations

import numpy as np
import pytest
from starlette.testclient import TestClient

from aim_core import Repo, Run
from aim_core.ui.app import create_app

LOSS = 'metric.name == "loss"'
TRAIN_LOSS = 'metric.name == "loss" and metric.context.subset == "train"'


def group_of(body: dict, **key) -> dict:
    (group,) = [g for g in body["groups"] if g["key"] == key]
    return group


def test_mean_of_a_group_is_the_mean_of_its_runs(client, ui_repo):
    body = client.get("/api/metrics", params={
        "q": TRAIN_LOSS, "group": "run.experiment", "agg": "mean", "band": "minmax"}).json()
    baseline = group_of(body, **{"run.experiment": "baseline"})
    assert baseline["name"] == "loss" and len(baseline["members"]) == 2
    repo = Repo(ui_repo[0])
    metrics = [repo.get_run(ui_repo[1][n]).get_metric("loss", {"subset": "train"})
               for n in ("sgd-small", "sgd-large")]
    assert np.array_equal(metrics[0].steps, metrics[1].steps)
    assert baseline["x"] == metrics[0].steps.tolist()
    stacked = np.vstack([m.values for m in metrics])
    assert baseline["y"] == pytest.approx(stacked.mean(axis=0).tolist(), rel=1e-12)
    assert baseline["lo"] == pytest.approx(stacked.min(axis=0).tolist(), rel=1e-12)
    assert baseline["hi"] == pytest.approx(stacked.max(axis=0).tolist(), rel=1e-12)
    assert baseline["n"] == [2] * len(baseline["x"])
    wide = group_of(body, **{"run.experiment": "wide"})
    assert len(wide["members"]) == 1 and wide["lo"] == wide["hi"] == wide["y"]
    assert {body["series"][i]["run"] for i in baseline["members"]} == {
        ui_repo[1]["sgd-small"], ui_repo[1]["sgd-large"]}


def test_median_and_std_band(client, ui_repo):
    body = client.get("/api/metrics", params={
        "q": TRAIN_LOSS, "agg": "median", "band": "std"}).json()
    (everything,) = body["groups"]  # no group fields: one group per metric name
    repo = Repo(ui_repo[0])
    runs = [repo.get_run(ui_repo[1][n]) for n in ("sgd-small", "sgd-large", "sgd-wide")]
    stacked = np.vstack([r.get_metric("loss", {"subset": "train"}).values for r in runs])
    assert everything["y"] == pytest.approx(np.median(stacked, axis=0).tolist())
    mean, std = stacked.mean(axis=0), stacked.std(axis=0)
    assert everything["lo"] == pytest.approx((mean - std).tolist())
    assert everything["hi"] == pytest.approx((mean + std).tolist())


def test_groups_split_by_context_and_param(client):
    body = client.get("/api/metrics", params={
        "q": LOSS, "group": ["metric.context.subset", "run.hparams.lr"], "agg": "mean"}).json()
    keys = {(g["key"]["metric.context.subset"], g["key"]["run.hparams.lr"]) for g in body["groups"]}
    assert keys == {(s, lr) for s in ("train", "val") for lr in (0.01, 0.05, 0.02)}
    assert all(len(g["members"]) == 1 and g["lo"] is None for g in body["groups"])


def test_hidden_raw_lines_are_not_sent(client):
    shown = client.get("/api/metrics", params={"q": LOSS, "agg": "mean", "raw": "1"})
    hidden = client.get("/api/metrics", params={"q": LOSS, "agg": "mean", "raw": "0"})
    assert len(hidden.content) < len(shown.content) / 2
    body = hidden.json()
    assert all(s["values"] is None and s["steps"] is None for s in body["series"])
    assert len(body["series"]) == 6 and body["groups"][0]["members"]


def test_x_axes_epoch_relative_and_wall_time(client, ui_repo):
    run = Repo(ui_repo[0]).get_run(ui_repo[1]["sgd-large"])
    metric = run.get_metric("loss", {"subset": "val"})
    q = f'metric.name == "loss" and metric.context.subset == "val" and run.hash == "{run.hash}"'
    bodies = {axis: client.get("/api/metrics", params={"q": q, "x": axis}).json()
              for axis in ("step", "epoch", "time", "wall")}
    assert "x" not in bodies["step"]["series"][0]
    assert bodies["epoch"]["series"][0]["x"] == [0, 1, 2, 3, 4]
    relative = np.array(bodies["time"]["series"][0]["x"])
    assert relative == pytest.approx(metric.timestamps - run.creation_time, abs=1e-3)
    wall = np.array(bodies["wall"]["series"][0]["x"])
    assert wall == pytest.approx(metric.timestamps, abs=1e-3)


def test_x_axis_another_metric_aligns_on_shared_steps(client, ui_repo):
    body = client.get("/api/metrics", params={
        "q": 'metric.name == "loss" and run.experiment == "baseline"', "x": "metric:acc"}).json()
    # train loss has no acc in its context; each run's only acc (val) is used
    assert len(body["series"]) == 4 and body["unaligned"] == 0
    run = Repo(ui_repo[0]).get_run(ui_repo[1]["sgd-small"])
    acc = run.get_metric("acc", {"subset": "val"})
    val = next(s for s in body["series"]
               if s["run"] == run.hash and s["context"] == {"subset": "val"})
    assert val["steps"] == acc.steps.tolist() and val["x"] == pytest.approx(acc.values.tolist())
    train = next(s for s in body["series"]
                 if s["run"] == run.hash and s["context"] == {"subset": "train"})
    steps = run.get_metric("loss", {"subset": "train"}).steps
    assert train["steps"] == np.intersect1d(steps, acc.steps).tolist() == [8, 16, 24, 32]
    assert "acc" in body["names"] and "loss" in body["names"]
    missing = client.get("/api/metrics", params={"q": 'metric.name == "wave"',
                                                 "x": "metric:acc"}).json()
    assert missing["series"] == [] and missing["unaligned"] == 1


def test_many_series_share_a_point_budget(tmp_path):
    Repo(tmp_path, init=True)
    for i in range(3):
        with Run(repo=str(tmp_path)) as run:
            for step in range(3000):
                run.track(float(np.sin(step / 100 + i)), name="sine", step=step)
    with TestClient(create_app(tmp_path), base_url="http://127.0.0.1") as client:
        body = client.get("/api/metrics", params={"points": 200}).json()
        assert body["points"] == 200
        assert all(len(s["steps"]) <= 200 and s["steps"][-1] == 2999 for s in body["series"])
        assert all(max(s["values"]) == pytest.approx(1.0, abs=1e-3) for s in body["series"])


def test_a_live_run_shows_new_points_on_the_next_search(tmp_path):
    Repo(tmp_path, init=True)
    run = Run(repo=str(tmp_path), flush_interval=60)
    for step in range(10):
        run.track(float(step), name="loss", step=step)
    run.flush()
    with TestClient(create_app(tmp_path), base_url="http://127.0.0.1") as client:
        first = client.get("/api/metrics").json()
        assert first["series"][0]["steps"][-1] == 9 and first["runs"][run.hash]["active"]
        run.track(99.0, name="loss", step=10)
        run.flush()
        second = client.get("/api/metrics").json()
        assert second["series"][0]["steps"][-1] == 10 and second["series"][0]["values"][-1] == 99
    run.close()
