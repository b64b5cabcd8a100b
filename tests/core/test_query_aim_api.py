"""Queries and DataFrames as Aim's docs use them: per-run collections, paging, report modes."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import numpy as np
import pytest

from aim_core import QueryReportMode, Repo, Run
from aim_core.errors import QueryError


@pytest.fixture
def repo(repo_path):
    """Three runs: lr 0.1/0.2/0.3, each with train and val loss over three steps."""
    hashes = []
    for i, lr in enumerate((0.1, 0.2, 0.3)):
        with Run(repo=str(repo_path), experiment="q", system_tracking_interval=None) as run:
            run["hparams"] = {"lr": lr, "layers": [i, i]}
            for step in range(3):
                run.track(lr * step, name="loss", step=step, epoch=step // 2,
                          context={"subset": "train"})
                run.track(lr * step + 1, name="loss", step=step, context={"subset": "val"})
        hashes.append(run.hash)
    repo = Repo(str(repo_path))
    repo.hashes = hashes
    return repo


def test_query_metrics_per_run_as_in_aims_docs(repo):
    query = "metric.name == 'loss'"
    seen = []
    for run_metrics_collection in repo.query_metrics(query).iter_runs():
        for metric in run_metrics_collection:
            params = metric.run[...]
            steps, metric_values = metric.values.sparse_numpy()
            seen.append((metric.run.hash, metric.context.subset, params["hparams"]["lr"],
                         steps.tolist(), metric_values.tolist()))
    assert len(seen) == 6
    first = [s for s in seen if s[0] == repo.hashes[0]]
    assert [s[1] for s in first] == ["train", "val"]
    assert first[0][2:] == (0.1, [0, 1, 2], [0.0, 0.1, 0.2])
    collections = list(repo.query_metrics('metric.context.subset == "val"').iter_runs())
    assert [c.run.hash for c in collections] == repo.hashes
    assert [len(c) for c in collections] == [1, 1, 1]


def test_paginated_offset_and_report_mode(repo):
    h0, h1, h2 = repo.hashes
    runs = repo.query_runs("run.hparams.lr > 0", paginated=True, offset=h0,
                           report_mode=QueryReportMode.DISABLED)
    assert [m.run.hash for m in runs.iter_runs()] == [h1, h2]
    assert repo.query_runs("", offset="unknown").hashes() == [h0, h1, h2]
    metrics = repo.query_metrics("metric.name == 'loss'", paginated=False, offset=h1,
                                 report_mode=0)
    assert {m.run.hash for m in metrics} == {h2}
    tuples = list(repo.query_runs("", report_mode=2).iter_runs())
    assert [(m.hash, progress) for m, progress in tuples] == [(h0, (1, 3)), (h1, (2, 3)),
                                                              (h2, (3, 3))]
    per_run = list(repo.query_metrics("", report_mode=QueryReportMode.PROGRESS_TUPLE).iter_runs())
    assert [progress for _, progress in per_run] == [(1, 3), (2, 3), (3, 3)]
    with pytest.raises(ValueError):
        repo.query_runs("", report_mode=7)


def test_run_query_items_hold_their_metrics(repo):
    result = repo.query_runs("run.hparams.lr >= 0.2")
    for item in result.iter_runs():
        assert item.run["hparams", "lr"] >= 0.2
        assert sorted(m.context["subset"] for m in item) == ["train", "val"]
    assert len(list(result.iter())) == 4  # as in Aim: the metrics of every matching run


def test_metric_dataframe_with_aims_signature_and_columns(repo):
    pd = pytest.importorskip("pandas")
    metric = repo.get_run(repo.hashes[1]).get_metric("loss", {"subset": "train"})
    plain = metric.dataframe()
    assert list(plain.columns) == ["idx", "step", "value", "epoch", "time"]
    assert plain["step"].tolist() == [0, 1, 2] and plain["epoch"].tolist() == [0.0, 0.0, 1.0]
    assert plain["value"].tolist() == pytest.approx([0.0, 0.2, 0.4])
    local = [datetime.fromtimestamp(t) for t in metric.timestamps.tolist()]  # Aim's `time`
    gaps = [abs(t.to_pydatetime(warn=False) - e) for t, e in zip(plain["time"], local, strict=True)]
    assert max(gaps) < timedelta(milliseconds=1)
    full = metric.dataframe(include_run=True, include_name=True, include_context=True,
                            only_last=False)
    assert list(full.columns) == ["idx", "step", "value", "epoch", "time", "run.hash",
                                  "run.hparams.lr", "run.hparams.layers", "metric.name",
                                  "metric.context.subset"]
    assert set(full["run.hash"]) == {repo.hashes[1]} and set(full["run.hparams.lr"]) == {0.2}
    assert set(full["run.hparams.layers"]) == {"[1, 1]"} and set(full["metric.name"]) == {"loss"}
    last = metric.dataframe(only_last=True)
    assert last["step"].tolist() == [2] and last["value"].tolist() == pytest.approx([0.4])
    assert isinstance(full, pd.DataFrame)


def test_collection_dataframes(repo):
    pytest.importorskip("pandas")
    metrics = repo.query_metrics("metric.name == 'loss'")
    frame = metrics.dataframe()
    assert len(frame) == 18 and set(frame["metric.context.subset"]) == {"train", "val"}
    assert set(frame["run.hash"]) == set(repo.hashes)
    last = metrics.dataframe(only_last=True)
    assert len(last) == 6 and set(last["step"]) == {2}
    bare = metrics.dataframe(include_run=False, include_context=False)
    assert "run.hash" not in bare.columns and "metric.name" in bare.columns
    (first_run, *_) = metrics.iter_runs()
    assert len(first_run.dataframe()) == 6
    runs = repo.query_runs("run.hparams.lr < 0.25").dataframe()
    assert runs["hash"].tolist() == repo.hashes[:2]
    assert runs["hparams.lr"].tolist() == [0.1, 0.2] and set(runs["experiment"]) == {"q"}
    empty = repo.query_metrics("metric.name == 'nothing'").dataframe()
    assert empty.empty and list(empty.columns) == ["idx", "step", "value", "epoch", "time"]


@pytest.mark.parametrize("query", ["run.hparams.lr >", "metric.name == (", "run.__class__",
                                   "import os"])
def test_a_bad_query_is_both_query_error_and_syntax_error(repo, query):
    for call in (repo.query_runs, repo.query_metrics):
        with pytest.raises(QueryError) as caught:
            call(query)
        assert isinstance(caught.value, SyntaxError) and "column" in str(caught.value)
    try:
        repo.query_runs(query)
    except SyntaxError as exc:  # how code written for Aim catches it
        assert "^" in str(exc)


def test_query_values_stay_numpy_for_numpy_code(repo):
    for metric in repo.query_metrics("metric.context.subset == 'val'"):
        assert np.allclose(metric.values - 1, metric.run["hparams", "lr"] * metric.steps)


def test_time_column_is_local_time_across_daylight_saving(repo_path, monkeypatch):
    pytest.importorskip("pandas")
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        run = Run(repo=repo_path)
        winter, summer = 1700000000.5, 1690000000.25  # EST and EDT
        seq = run._writer.new_sequence("t", {})
        seq.pending.extend([(0, 1.0, float("nan"), winter), (1, 2.0, float("nan"), summer)])
        run.close()
        frame = Repo(repo_path).get_run(run.hash).get_metric("t").dataframe()
        assert [t.to_pydatetime(warn=False) for t in frame["time"]] == [
            datetime.fromtimestamp(winter), datetime.fromtimestamp(summer)]
        assert frame["time"][0].hour == 17 and frame["time"][1].hour == 0
    finally:
        monkeypatch.undo()
        time.tzset()
