"""Run: params, properties, track() and reading back, on real files."""

from __future__ import annotations

import argparse
import dataclasses
import enum
import math
from pathlib import Path

import numpy as np
import pytest

from aim_core import Repo, Run
from aim_core.errors import AimCoreError, ReadOnlyRunError, RunNotFoundError


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Optim:
    lr: float = 0.1
    betas: tuple = (0.9, 0.99)


def test_params_round_trip_with_conversions(repo_path):
    with Run(repo=repo_path, experiment="exp") as run:
        run["hparams"] = {"lr": 1e-3, "batch_size": 32, "nested": {"a": [1, 2]}}
        run["hparams", "lr"] = 3e-4
        run["np"] = {"scalar": np.float32(0.5), "array": np.arange(3), "i": np.int64(7)}
        run["misc"] = {"path": Path("/data/x"), "color": Color.RED, "opt": Optim(),
                       "ns": argparse.Namespace(depth=3), "tuple": (1, "a")}
        run["gone"] = 1
        del run["gone"]
        assert run["hparams"]["lr"] == 3e-4
        run["hparams"]["lr"] = 99  # a copy: the stored param does not change
        assert run["hparams", "lr"] == 3e-4
        run_hash = run.hash
    stored = Repo(repo_path).get_run(run_hash)
    assert stored["hparams"] == {"lr": 3e-4, "batch_size": 32, "nested": {"a": [1, 2]}}
    assert stored["np"] == {"scalar": 0.5, "array": [0, 1, 2], "i": 7}
    assert stored["misc"] == {"path": "/data/x", "color": "red",
                              "opt": {"lr": 0.1, "betas": [0.9, 0.99]},
                              "ns": {"depth": 3}, "tuple": [1, "a"]}
    assert stored.get("gone") is None and stored.get("gone", 5) == 5
    with pytest.raises(KeyError):
        stored["gone"]


def test_omegaconf_params_are_resolved(repo_path):
    omegaconf = pytest.importorskip("omegaconf")
    cfg = omegaconf.OmegaConf.create({"lr": 0.1, "sched": {"base": "${lr}"}})
    with Run(repo=repo_path) as run:
        run["cfg"] = cfg
        assert run["cfg"] == {"lr": 0.1, "sched": {"base": 0.1}}


def test_bad_param_raises_and_keeps_stored_params(repo_path):
    run = Run(repo=repo_path)
    run["ok"] = {"a": 1}
    with pytest.raises(TypeError, match="bad.obj"):
        run["bad"] = {"obj": object()}
    with pytest.raises(TypeError, match="keys must be str"):
        run["bad"] = {1: "x"}
    run.close()
    stored = Repo(repo_path).get_run(run.hash)
    assert stored.params == {"ok": {"a": 1}}


def test_properties(repo_path):
    run = Run(repo=repo_path, experiment="baseline")
    run.name, run.description = "first", "a test run"
    run.add_tag("a")
    run.add_tag("b")
    run.add_tag("a")
    run.remove_tag("b")
    assert (run.name, run.experiment, run.tags, run.active) == ("first", "baseline", ["a"], True)
    assert run.status == "running" and run.end_time is None and run.duration >= 0
    assert run.created_at.timestamp() == pytest.approx(run.creation_time)
    run.archived = True
    run.close()
    stored = Repo(repo_path).get_run(run.hash)
    assert (stored.name, stored.description, stored.experiment) == ("first", "a test run",
                                                                    "baseline")
    assert stored.tags == ["a"] and stored.archived is True
    assert stored.status == "finished" and stored.active is False
    assert stored.end_time >= stored.creation_time
    assert stored.duration == pytest.approx(stored.end_time - stored.creation_time)
    assert run.name == "first"  # a closed handle still reads its run


def test_track_contexts_default_steps_and_epochs(repo_path):
    run = Run(repo=repo_path, system_tracking_interval=None)  # only the tracked metrics
    for i in range(5):
        run.track(1.0 / (i + 1), name="loss", epoch=i // 2, context={"subset": "train"})
        run.track({"loss": 0.5 * i, "acc": np.float64(0.1 * i)}, context={"subset": "val"})
    run.track(7, name="loss", step=10, context={"subset": "train"})
    run.track(8.0, name="loss", context={"subset": "train"})  # last step + 1 -> 11
    run.track(np.array([2.5]), name="loss")  # no context
    run.close()
    stored = Repo(repo_path).get_run(run.hash)
    train = stored.get_metric("loss", {"subset": "train"})
    assert train.steps.tolist() == [0, 1, 2, 3, 4, 10, 11]
    assert train.values.tolist() == pytest.approx([1, 1 / 2, 1 / 3, 1 / 4, 1 / 5, 7, 8])
    assert train.epochs[:5].tolist() == [0, 0, 1, 1, 2] and np.isnan(train.epochs[5:]).all()
    assert train.steps.dtype == np.int64 and train.values.dtype == np.float64
    assert train.timestamps.dtype == np.float64 and (np.diff(train.timestamps) >= 0).all()
    val = stored.get_metric("acc", {"subset": "val"})
    assert val.steps.tolist() == [0, 1, 2, 3, 4]
    assert stored.get_metric("loss", None).values.tolist() == [2.5]
    assert stored.get_metric("loss", {"subset": "test"}) is None
    names = sorted((m.name, tuple(m.context.items())) for m in stored.metrics())
    assert names == [("acc", (("subset", "val"),)), ("loss", ()),
                     ("loss", (("subset", "train"),)), ("loss", (("subset", "val"),))]


def test_points_sorted_by_step_one_per_step_and_summary_figures(repo_path):
    run = Run(repo=repo_path)
    for step, value in [(5, 1.0), (2, 2.0), (5, 3.0), (1, float("nan")), (2, -1.0)]:
        run.track(value, name="m", step=step)
    live = run.get_metric("m")  # a live run reads its own buffered points
    assert live.steps.tolist() == [1, 2, 5]  # re-tracked steps: the last tracked value wins
    assert live.values[1:].tolist() == [-1.0, 3.0]
    assert (live.last, live.last_step, live.first_step, live.min, live.max, live.count) == (
        3.0, 5, 1, -1.0, 3.0, 3)
    assert math.isnan(live.first)
    run.close()
    stored = Repo(repo_path).get_run(run.hash).get_metric("m")
    assert stored.values[1:].tolist() == [-1.0, 3.0]
    assert (stored.last, stored.last_step, stored.first_step, stored.min, stored.max,
            stored.count) == (3.0, 5, 1, -1.0, 3.0, 3)
    steps, (values, epochs, times) = stored.data.numpy()
    assert steps.tolist() == [1, 2, 5] and len(values) == len(epochs) == len(times) == 3


def test_inf_and_nan_are_stored_as_they_are(repo_path):
    with Run(repo=repo_path) as run:
        run.track(float("inf"), name="x")
        run.track(float("nan"), name="x")
    values = Repo(repo_path).get_run(run.hash).get_metric("x").values
    assert values[0] == float("inf") and math.isnan(values[1])


@pytest.mark.parametrize("bad", ["x", None, np.arange(3), object(), [1.0], b"1"])
def test_track_rejects_bad_values_and_keeps_data(repo_path, bad):
    run = Run(repo=repo_path)
    run.track(1.0, name="loss")
    with pytest.raises(TypeError, match="'loss'"):
        run.track(bad, name="loss")
    with pytest.raises(TypeError):
        run.track({"loss": 2.0, "bad": bad})  # nothing of the dict is tracked
    run.track(3.0, name="loss")
    run.close()
    assert Repo(repo_path).get_run(run.hash).get_metric("loss").values.tolist() == [1.0, 3.0]


def test_track_rejects_bad_name_step_epoch_context(repo_path):
    with Run(repo=repo_path) as run:
        with pytest.raises(TypeError, match="name"):
            run.track(1.0)
        with pytest.raises(TypeError, match="step"):
            run.track(1.0, name="a", step="3")
        with pytest.raises(TypeError, match="epoch"):
            run.track(1.0, name="a", epoch="one")
        with pytest.raises(TypeError, match="context"):
            run.track(1.0, name="a", context={"k": object()})
        run.track(1.0, name="a", step=np.int64(4), epoch=np.float32(1))
        assert run.get_metric("a").steps.tolist() == [4]


def test_torch_scalars_are_tracked(repo_path):
    torch = pytest.importorskip("torch")
    with Run(repo=repo_path) as run:
        run.track(torch.tensor(0.25), name="t")
        run.track(torch.tensor([0.5]), name="t")
        with pytest.raises(TypeError):
            run.track(torch.ones(2), name="t")
        assert run.get_metric("t").values.tolist() == [0.25, 0.5]


def test_resume_appends_and_same_process_shares_writer(repo_path):
    run = Run(repo=repo_path)
    run.track(1.0, name="loss")
    same = Run(run.hash, repo=repo_path)  # already open here: one shared writer
    same.track(2.0, name="loss")
    assert run.get_metric("loss").values.tolist() == [1.0, 2.0]
    same.close()
    assert run.active and Repo(repo_path).get_run(run.hash).status == "running"
    run.close()
    assert Repo(repo_path).get_run(run.hash).status == "finished"
    resumed = Run(run.hash, repo=repo_path)
    assert resumed.status == "running"
    resumed.track(3.0, name="loss")
    resumed.close()
    metric = Repo(repo_path).get_run(run.hash).get_metric("loss")
    assert metric.steps.tolist() == [0, 1, 2] and metric.values.tolist() == [1.0, 2.0, 3.0]


def test_read_only_and_closed_runs_refuse_writes(repo_path):
    run = Run(repo=repo_path)
    run.close()
    with pytest.raises(AimCoreError, match="closed"):
        run.track(1.0, name="x")
    ro = Run(run.hash, repo=repo_path, read_only=True)
    with pytest.raises(ReadOnlyRunError):
        ro.track(1.0, name="x")
    with pytest.raises(ReadOnlyRunError):
        ro["a"] = 1


def test_unknown_hash_and_bad_hash(repo_path):
    Run(repo=repo_path).close()
    with pytest.raises(RunNotFoundError, match="deadbeef"):
        Run("deadbeef", repo=repo_path)
    assert Repo(repo_path).get_run("deadbeef") is None  # as in Aim
    assert Repo(repo_path).get_run("../../etc/passwd") is None
    with pytest.raises(ValueError, match="Invalid run hash"):
        Run("../../etc/passwd", repo=repo_path, read_only=True)


def test_failed_status_from_context_manager(repo_path):
    with pytest.raises(RuntimeError), Run(repo=repo_path) as run:
        run.track(1.0, name="x")
        raise RuntimeError("boom")
    stored = Repo(repo_path).get_run(run.hash)
    assert stored.status == "failed" and stored.get_metric("x").values.tolist() == [1.0]


def test_dataframe_and_sample(repo_path):
    pytest.importorskip("pandas")
    with Run(repo=repo_path) as run:
        values = np.sin(np.linspace(0, 20, 5000))
        values[1234] = 5.0
        values[4321] = -5.0
        for v in values:
            run.track(float(v), name="wave")
    metric = Repo(repo_path).get_run(run.hash).get_metric("wave")
    frame = metric.dataframe()
    assert list(frame.columns) == ["idx", "step", "value", "epoch", "time"] and len(frame) == 5000
    small = metric.sample(100)
    assert len(small.steps) <= 100
    assert small.steps[0] == 0 and small.steps[-1] == 4999
    assert {1234, 4321} <= set(small.steps.tolist())
    assert small.max == 5.0 and small.min == -5.0


def test_large_metric_is_few_chunks(repo_path):
    from aim_core.storage.run_file import CHUNK_POINTS

    run = Run(repo=repo_path, flush_interval=0.01, system_tracking_interval=None)
    n = CHUNK_POINTS * 3 + 1000
    for i in range(n):
        run.track(float(i), name="big")
        if i % 500 == 0:
            run.flush()  # ~400 flushes must not mean ~400 chunks
    run.close()
    stored = Repo(repo_path).get_run(run.hash)
    (info,) = stored._stored_meta()[2].values()
    assert len(info["chunks"]) <= 3 + 16 and sum(info["chunk_sizes"]) == n
    metric = stored.get_metric("big")
    assert metric.count == n and (metric.values == np.arange(n)).all()


def test_reopening_only_to_edit_props_keeps_how_the_run_ended(repo_path):
    with pytest.raises(RuntimeError), Run(repo=repo_path) as run:
        run.track(1.0, name="x")
        raise RuntimeError("boom")
    before = Repo(repo_path).get_run(run.hash)
    end_time = before.end_time
    again = Run(run.hash, repo=repo_path)
    again.archived = True
    again.close()
    after = Repo(repo_path).get_run(run.hash)
    assert (after.archived, after.status, after.end_time) == (True, "failed", end_time)
    more = Run(run.hash, repo=repo_path)
    more.track(2.0, name="x")
    more.close()
    final = Repo(repo_path).get_run(run.hash)
    assert final.status == "finished" and final.end_time > end_time
