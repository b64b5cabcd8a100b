"""The dashboard's JSON API, through Starlette's test client, against a trained repo."""

from __future__ import annotations

import csv
import io
import json
import socket

import numpy as np
import pytest
from starlette.testclient import TestClient
from ui_repo_data import CONFIGS, make_repo

from aim_core import Repo, Run
from aim_core.ui.app import create_app
from aim_core.ui.server import serve

LOSS_TRAIN = 'loss {"subset":"train"}'
LOCAL = "http://127.0.0.1"


def test_info_says_read_only(client, ui_repo):
    body = client.get("/api/info").json()
    assert body == {"repo": str(Repo(ui_repo[0]).path), "allow_writes": False}


def test_runs_lists_every_run_with_props(client, ui_repo):
    body = client.get("/api/runs").json()
    rows = {r["name"]: r for r in body["runs"]}
    assert body["count"] == 4 and set(rows) == {c[0] for c in CONFIGS} | {"long"}
    assert rows["sgd-wide"]["status"] == "failed" and rows["sgd-small"]["status"] == "finished"
    assert rows["sgd-wide"]["experiment"] == "wide"
    assert rows["sgd-small"]["hash"] == ui_repo[1]["sgd-small"]
    assert all(r["duration"] >= 0 and r["creation_time"] for r in rows.values())
    created = [r["creation_time"] for r in body["runs"]]
    assert created == sorted(created, reverse=True)
    keys = {c["key"]: c["varying"] for c in body["columns"]["params"]}
    assert keys == {"hparams.lr": True, "hparams.batch_size": True,
                    "hparams.optimizer.name": True}
    assert LOSS_TRAIN in {c["key"] for c in body["columns"]["metrics"]}


def test_runs_picked_columns_hold_params_and_last_values(client, ui_repo):
    body = client.get("/api/runs", params={"param": "hparams.lr", "metric": LOSS_TRAIN}).json()
    rows = {r["hash"]: r for r in body["runs"]}
    for run in Repo(ui_repo[0]).iter_runs():
        assert rows[run.hash]["params"] == {"hparams.lr": run["hparams", "lr"]}
        metric = run.get_metric("loss", {"subset": "train"})
        expected = None if metric is None else float(metric.values[-1])
        assert rows[run.hash]["metrics"] == {LOSS_TRAIN: expected}


def test_runs_auto_columns_pick_varying_params(client):
    body = client.get("/api/runs", params={"auto": "1"}).json()
    assert body["shown"]["params"] == ["hparams.batch_size", "hparams.lr",
                                       "hparams.optimizer.name"]
    assert body["runs"][0]["params"].keys() == set(body["shown"]["params"])


def test_runs_search_narrows(client, ui_repo):
    body = client.get("/api/runs", params={"q": 'run.experiment == "baseline"'}).json()
    assert sorted(r["name"] for r in body["runs"]) == ["sgd-large", "sgd-small"]
    body = client.get("/api/runs", params={"q": "run.hparams.lr >= 0.02"}).json()
    assert sorted(r["name"] for r in body["runs"]) == ["sgd-large", "sgd-wide"]


def test_runs_by_hash_for_live_refresh(client, ui_repo):
    wanted = ui_repo[1]["long"]
    body = client.get("/api/runs", params={"hash": [wanted, "f" * 24]}).json()
    assert [r["hash"] for r in body["runs"]] == [wanted]


@pytest.mark.parametrize("query, fragment", [
    ("run.hparams.lr >", "column 17"),
    ("run.__class__", "__class__"),
    ('__import__("os")', "__import__"),
])
def test_bad_queries_answer_400_with_the_message(client, query, fragment):
    for path in ("/api/runs", "/api/metrics"):
        resp = client.get(path, params={"q": query})
        assert resp.status_code == 400, path
        assert fragment in resp.json()["error"]


def test_run_detail_has_params_tree_and_summaries(client, ui_repo):
    run_hash = ui_repo[1]["sgd-small"]
    body = client.get(f"/api/runs/{run_hash}").json()
    assert body["run"]["name"] == "sgd-small" and body["run"]["status"] == "finished"
    assert body["params"] == {"hparams": {"lr": 0.01, "batch_size": 32,
                                          "optimizer": {"name": "sgd"}}}
    seqs = {(s["name"], json.dumps(s["context"])): s for s in body["sequences"]}
    own = {key for key in seqs if not key[0].startswith("__system__")}
    assert own == {("loss", '{"subset": "train"}'), ("loss", '{"subset": "val"}'),
                   ("acc", '{"subset": "val"}')}
    assert seqs[("__system__cpu", "{}")]["count"] >= 1  # sampled at start, as in Aim
    metric = Repo(ui_repo[0]).get_run(run_hash).get_metric("loss", {"subset": "train"})
    train = seqs[("loss", '{"subset": "train"}')]
    assert train["count"] == len(metric.values) == 40
    assert train["last"] == pytest.approx(metric.values[-1])
    assert train["min"] == pytest.approx(metric.values.min())
    assert train["max"] == pytest.approx(metric.values.max())


@pytest.mark.parametrize("path", [
    "/api/runs/0123456789abcdef01234567", "/api/runs/..%2F..%2Fetc",
    "/api/series?run=0123456789abcdef01234567",
])
def test_unknown_hash_is_404(client, path):
    resp = client.get(path)
    assert resp.status_code == 404 and "No run" in resp.json()["error"]


def test_series_are_downsampled_keeping_extremes(client, ui_repo):
    run_hash = ui_repo[1]["long"]
    body = client.get("/api/series", params={"run": run_hash, "name": "wave"}).json()
    (wave,) = body["series"]
    full = Repo(ui_repo[0]).get_run(run_hash).get_metric("wave")
    assert wave["count"] == 5000 and len(wave["steps"]) <= 1000
    assert wave["steps"][0] == 0 and wave["steps"][-1] == 4999
    assert max(wave["values"]) == pytest.approx(full.values.max())  # the spike at 3333
    assert 3333 in wave["steps"]
    assert min(wave["values"]) == pytest.approx(full.values.min())
    assert wave["epochs"] is None and len(wave["times"]) == len(wave["steps"])
    small = client.get("/api/series", params={"run": run_hash, "name": "wave", "points": 50})
    assert len(small.json()["series"][0]["steps"]) <= 50


def test_series_filter_by_context_and_nan_as_null(client, ui_repo):
    run_hash = ui_repo[1]["sgd-large"]
    params = {"run": run_hash, "context": '{"subset": "val"}'}
    names = sorted(s["name"] for s in client.get("/api/series", params=params).json()["series"])
    assert names == ["acc", "loss"]
    val = client.get("/api/series", params={**params, "name": "loss"}).json()["series"][0]
    assert val["epochs"] == [0, 1, 2, 3, 4] and val["steps"] == [8, 16, 24, 32, 40]
    gaps = client.get("/api/series", params={"run": ui_repo[1]["long"], "name": "gaps"})
    assert gaps.json()["series"][0]["values"] == [None, 1.0]


@pytest.mark.parametrize("params", [
    {}, {"run": "x", "context": "[1]"}, {"run": "x", "context": "{"}, {"run": "x", "points": "0"},
    {"run": "x", "points": "2"},
])
def test_series_bad_arguments_are_400(client, params):
    assert client.get("/api/series", params=params).status_code == 400


def test_metric_search_gives_one_series_per_run_and_context(client, ui_repo):
    body = client.get("/api/metrics", params={"q": 'metric.name == "loss"'}).json()
    pairs = {(s["run"], s["context"]["subset"]) for s in body["series"]}
    trained = [ui_repo[1][c[0]] for c in CONFIGS]
    assert pairs == {(h, subset) for h in trained for subset in ("train", "val")}
    assert len(body["series"]) == 6 and not body["truncated"]
    assert body["runs"][trained[1]]["params"]["hparams.lr"] == 0.05
    narrowed = client.get("/api/metrics", params={
        "q": 'metric.name == "loss" and metric.context.subset == "val" and run.hparams.lr > 0.015',
    }).json()
    assert sorted(body["runs"][s["run"]]["name"] for s in narrowed["series"]) == [
        "sgd-large", "sgd-wide"]
    limited = client.get("/api/metrics", params={"q": 'metric.name == "loss"', "limit": 2})
    assert len(limited.json()["series"]) == 2 and limited.json()["truncated"]


def test_writes_are_refused_when_read_only(client, ui_repo):
    run_hash = ui_repo[1]["sgd-small"]
    headers = {"X-Aim-Core-Write": "1"}
    assert client.post(f"/api/runs/{run_hash}/archive", headers=headers).status_code == 403
    assert client.delete(f"/api/runs/{run_hash}", headers=headers).status_code == 403
    assert not Repo(ui_repo[0]).get_run(run_hash).archived


def test_writes_with_allow_writes(tmp_path):
    hashes = make_repo(tmp_path / "repo")
    small, wide = hashes["sgd-small"], hashes["sgd-wide"]
    app = create_app(tmp_path / "repo", allow_writes=True)
    with TestClient(app, base_url=LOCAL) as client:
        write = {"X-Aim-Core-Write": "1"}
        assert client.get("/api/info").json()["allow_writes"] is True
        assert client.post(f"/api/runs/{small}/archive").status_code == 403  # no header
        assert client.post(f"/api/runs/{small}/archive", headers=write).status_code == 200
        assert client.post(f"/api/runs/{wide}/archive", headers=write).status_code == 200
        names = [r["name"] for r in client.get("/api/runs").json()["runs"]]
        assert "sgd-small" not in names and len(names) == 2
        archived = client.get("/api/runs", params={"q": "run.archived == True"}).json()
        assert sorted(r["name"] for r in archived["runs"]) == ["sgd-small", "sgd-wide"]
        assert client.post(f"/api/runs/{small}/unarchive", headers=write).status_code == 200
        assert client.delete(f"/api/runs/{small}", headers=write).status_code == 200
        assert client.get(f"/api/runs/{small}").status_code == 404
        assert client.delete(f"/api/runs/{small}", headers=write).status_code == 404
    repo = Repo(tmp_path / "repo")
    assert small not in repo.list_runs()
    wide_run = repo.get_run(wide)
    assert wide_run.archived and wide_run.status == "failed"  # archiving keeps the status


def test_pages_and_plotly_are_served_locally(client, ui_repo):
    pages = ("/", "/metrics", "/params", "/scatters", "/compare", f"/runs/{ui_repo[1]['long']}")
    for path in pages:
        resp = client.get(path)
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
        assert "http://" not in resp.text and "https://" not in resp.text
    plotly_js = client.get("/vendor/plotly.min.js")
    assert plotly_js.status_code == 200 and len(plotly_js.content) > 1_000_000
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/static/../api.py").status_code == 404


def test_serve_refuses_a_busy_port(ui_repo):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        with pytest.raises(OSError, match="pick another --port"):
            serve(ui_repo[0], port=busy.getsockname()[1])


def test_downsampling_scales(tmp_path):
    from aim_core import Run

    Repo(tmp_path / "big", init=True)
    run = Run(repo=str(tmp_path / "big"))
    for step, value in enumerate(np.sin(np.arange(200_000) / 1000.0)):
        run.track(float(value), name="sine", step=step)
    run.close()
    with TestClient(create_app(tmp_path / "big"), base_url=LOCAL) as client:
        (series,) = client.get("/api/metrics", params={"q": ""}).json()["series"]
    assert series["count"] == 200_000 and len(series["values"]) <= 1000
    assert series["steps"][-1] == 199_999


def test_runs_pages_partition_the_sorted_table(client):
    full = client.get("/api/runs", params={"sort": "name", "dir": "asc"}).json()
    names = [r["name"] for r in full["runs"]]
    assert names == sorted(names) and full["count"] == 4
    pages = [client.get("/api/runs", params={"sort": "name", "dir": "asc", "offset": offset,
                                             "limit": 3}).json() for offset in (0, 3)]
    assert [len(p["runs"]) for p in pages] == [3, 1] and all(p["count"] == 4 for p in pages)
    assert [r["name"] for p in pages for r in p["runs"]] == names
    desc = client.get("/api/runs", params={"sort": "name", "dir": "desc"}).json()
    assert [r["name"] for r in desc["runs"]] == names[::-1]


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_sorting_by_a_param_keeps_missing_values_last(client, direction):
    body = client.get("/api/runs", params={"sort": "p:hparams.batch_size", "dir": direction,
                                           "param": "hparams.batch_size"}).json()
    assert [r["params"]["hparams.batch_size"] for r in body["runs"]][-1] is None
    lrs = [r["name"] for r in client.get("/api/runs", params={
        "sort": "p:hparams.lr", "dir": direction}).json()["runs"]]
    expected = ["long", "sgd-small", "sgd-wide", "sgd-large"]  # lr 0.001, 0.01, 0.02, 0.05
    assert lrs == (expected if direction == "asc" else expected[::-1])


def test_sorting_by_a_metric_orders_by_its_last_value(client, ui_repo):
    body = client.get("/api/runs", params={"sort": "m:" + LOSS_TRAIN, "dir": "asc",
                                           "metric": LOSS_TRAIN}).json()
    lasts = [r["metrics"][LOSS_TRAIN] for r in body["runs"]]
    assert lasts[:3] == sorted(lasts[:3]) and lasts[3] is None  # the long run has no loss


def test_runs_csv_holds_every_row_of_the_table(client):
    args = {"sort": "p:hparams.lr", "dir": "asc", "param": ["hparams.lr", "hparams.optimizer.name"],
            "metric": LOSS_TRAIN}
    body = client.get("/api/runs", params=args).json()
    resp = client.get("/api/runs.csv", params=args)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert "attachment" in resp.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert [r["hash"] for r in rows] == [r["hash"] for r in body["runs"]]
    for row, run in zip(rows, body["runs"], strict=True):
        assert row["name"] == run["name"] and row["status"] == run["status"]
        assert float(row["creation_time"]) == run["creation_time"]
        assert row["hparams.lr"] == str(run["params"]["hparams.lr"])
        last = run["metrics"][LOSS_TRAIN]
        assert row[LOSS_TRAIN] == ("" if last is None else repr(last))


def test_runs_csv_quotes_cells_a_spreadsheet_would_run(tmp_path):
    with Run(repo=tmp_path, system_tracking_interval=None) as run:
        run.name = "=cmd|' /C calc'!A0"
        run["p"] = {"text": "+1+1", "at": "@x", "neg": -2}
    with TestClient(create_app(tmp_path), base_url=LOCAL) as client:
        resp = client.get("/api/runs.csv", params={"param": ["p.text", "p.at", "p.neg"]})
    (row,) = csv.DictReader(io.StringIO(resp.text))
    assert row["name"] == "'=cmd|' /C calc'!A0"
    assert (row["p.text"], row["p.at"], row["p.neg"]) == ("'+1+1", "'@x", "-2")


def test_compare_puts_params_side_by_side_and_lists_shared_metrics(client, ui_repo):
    hashes = [ui_repo[1]["sgd-small"], ui_repo[1]["long"]]
    body = client.get("/api/compare", params={"run": hashes}).json()
    assert [r["hash"] for r in body["runs"]] == hashes
    rows = {p["key"]: p for p in body["params"]}
    assert rows["hparams.lr"] == {"key": "hparams.lr", "values": [0.01, 0.001], "differs": True}
    assert rows["hparams.batch_size"]["values"] == [32, None] and rows["hparams.batch_size"][
        "differs"]
    assert body["metrics"] == []  # the long run tracks wave/gaps only
    pair = [ui_repo[1]["sgd-small"], ui_repo[1]["sgd-large"]]
    body = client.get("/api/compare", params={"run": pair}).json()
    assert {p["key"]: p["differs"] for p in body["params"]} == {
        "hparams.lr": True, "hparams.batch_size": False, "hparams.optimizer.name": False}
    assert [m["key"] for m in body["metrics"]] == [
        'acc {"subset":"val"}', LOSS_TRAIN, 'loss {"subset":"val"}']
    assert client.get("/api/compare", params={"run": ["f" * 24]}).status_code == 404
    assert client.get("/api/compare").status_code == 400


def test_the_runs_table_is_built_once_for_concurrent_requests(ui_repo):
    import threading

    from aim_core.query import query_runs
    from aim_core.ui.run_table import RunTables

    repo = Repo(ui_repo[0])
    tables, calls = RunTables(repo), []

    def query(q, **kwargs):
        calls.append(q)
        return query_runs(repo, q, **kwargs)

    results = []
    workers = [threading.Thread(target=lambda: results.append(tables.table("", query)))
               for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert calls == [""] and len(results) == 4 and all(t is results[0] for t in results)
    assert len(results[0].rows) == 4
