"""Bad input is refused at the door and never poisons a run; one bad sequence blocks no other."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from aim_core import Repo, Run, Text
from aim_core.errors import StorageError
from aim_core.query.catalog import scan


def test_out_of_range_step_is_refused_and_the_run_goes_on(repo_path):
    run = Run(repo=repo_path, flush_interval=0.05)
    run.track(1.0, name="loss", step=0)
    for bad in (2**63, -(2**63) - 1, 10**30):
        with pytest.raises(ValueError, match="int64"):
            run.track(1.0, name="loss", step=bad)
        with pytest.raises(ValueError, match="int64"):
            run.track({"loss": 1.0, "acc": 2.0}, step=bad)
    for step in range(1, 4001):
        run.track(float(step), name="loss", step=step)
    run["hparams"] = {"after": True}
    run.close()  # no StorageError: nothing bad reached a flush
    stored = Repo(repo_path).get_run(run.hash)
    assert stored.get_metric("loss").count == 4001 and stored["hparams"] == {"after": True}
    assert stored.get_metric("acc") is None


def test_int64_extreme_steps_round_trip(repo_path):
    with Run(repo=repo_path) as run:
        run.track(1.0, name="x", step=-(2**63))
        run.track(2.0, name="x", step=2**63 - 1)
    assert Repo(repo_path).get_run(run.hash).get_metric("x").steps.tolist() == [-(2**63),
                                                                                2**63 - 1]


def test_epochs_and_values_that_do_not_fit_a_float_are_refused(repo_path):
    with Run(repo=repo_path) as run:
        with pytest.raises(ValueError, match="epoch"):
            run.track(1.0, name="x", epoch=10**400)
        with pytest.raises(ValueError, match="float64"):
            run.track(10**400, name="x")
        with pytest.raises(TypeError, match="epoch"):
            run.track(1.0, name="x", epoch="3")
        run.track(1.0, name="x", epoch=2**62)
    assert Repo(repo_path).get_run(run.hash).get_metric("x").epochs.tolist() == [2.0**62]


def test_true_one_and_one_point_zero_are_different_contexts(repo_path):
    with Run(repo=repo_path) as run:
        for i, value in enumerate((True, 1, 1.0, np.int64(1), np.float32(1.0), np.bool_(True))):
            run.track(float(i), name="m", context={"k": value})
        assert run.get_metric("m", {"k": True}).values.tolist() == [0.0, 5.0]
    stored = Repo(repo_path).get_run(run.hash)
    assert stored.get_metric("m", {"k": True}).values.tolist() == [0.0, 5.0]
    assert stored.get_metric("m", {"k": 1}).values.tolist() == [1.0, 3.0]
    assert stored.get_metric("m", {"k": 1.0}).values.tolist() == [2.0, 4.0]
    contexts = Repo(repo_path).collect_sequence_info()["metric"]["m"]
    assert [type(c["k"]) for c in contexts] == [bool, int, float]


def test_nan_context_value_is_refused(repo_path):
    with Run(repo=repo_path) as run:
        with pytest.raises(ValueError, match="finite"):
            run.track(1.0, name="x", context={"k": float("nan")})
        with pytest.raises(ValueError, match="finite"):
            run.track(1.0, name="x", context={"k": float("inf")})
        assert list(run.metrics()) == []


@pytest.mark.parametrize("bad, error", [
    ({"big": 2**63}, ValueError), ({"small": -(2**63) - 1}, ValueError),
    ({"obj": object()}, TypeError),
])
def test_params_that_json_or_int64_cannot_hold_are_refused(repo_path, bad, error):
    run = Run(repo=repo_path)
    run["ok"] = {"a": 1, "edge": 2**63 - 1}
    with pytest.raises(error):
        run["bad"] = bad
    run.close()
    assert Repo(repo_path).get_run(run.hash).params == {"ok": {"a": 1, "edge": 2**63 - 1}}


def test_params_deeper_than_the_limit_or_cyclic_are_refused(repo_path):
    deep: dict = {}
    node = deep
    for _ in range(100):
        node["x"] = {}
        node = node["x"]
    cyclic: dict = {}
    cyclic["self"] = cyclic
    with Run(repo=repo_path) as run:
        with pytest.raises(ValueError, match="deeper"):
            run["deep"] = deep
        with pytest.raises(ValueError, match="deeper"):
            run["cyclic"] = cyclic
        with pytest.raises(ValueError, match="deeper"):
            run[tuple("p" * 70)] = 1
        run["fine"] = {"a": {"b": {"c": 1}}}
    assert Repo(repo_path).get_run(run.hash).params == {"fine": {"a": {"b": {"c": 1}}}}


def test_nan_and_inf_params_and_summaries_keep_catalog_queries_working(repo_path):
    with Run(repo=repo_path) as odd:
        odd["hparams"] = {"lr": float("nan"), "clip": float("inf"), "name": "odd"}
        odd.track(float("nan"), name="loss")
    with Run(repo=repo_path) as plain:
        plain["hparams"] = {"lr": 0.5, "clip": 1.0, "name": "plain"}
        plain.track(0.25, name="loss")
    repo = Repo(repo_path)
    assert repo.query_runs("run.hparams.lr > 0.1").hashes() == [plain.hash]
    assert repo.query_runs("run.hparams.clip > 1e300").hashes() == [odd.hash]
    assert repo.query_runs('run.hparams.name == "odd"').hashes() == [odd.hash]
    found = {m.run.hash: m.last for m in repo.query_metrics('metric.name == "loss"')}
    assert found[plain.hash] == 0.25 and np.isnan(found[odd.hash])
    params = {m.hash: m.params for m in repo.query_runs("")}
    assert np.isnan(params[odd.hash]["hparams"]["lr"])
    partial = dict(scan(repo, {("params", "hparams", "clip")}))  # odd: decoded from its text
    assert partial[odd.hash]["params"]["hparams"]["clip"] == float("inf")
    assert partial[plain.hash]["params"]["hparams"]["clip"] == 1.0


def test_a_sequence_kind_is_fixed_by_its_first_point(repo_path):
    run = Run(repo=repo_path)
    run.track(1.0, name="samples", context={"subset": "val"})
    writer = run._writer
    with pytest.raises(TypeError, match="metric.*image"):
        writer.new_sequence("samples", {"subset": "val"}, "image")
    images = writer.new_sequence("samples", {"subset": "train"}, "image")
    with pytest.raises(TypeError, match="image.*metric"):
        run.track(2.0, name="samples", context={"subset": "train"})
    assert images.pending == [] and run.get_metric("samples", {"subset": "val"}).count == 1
    run.close()


def test_a_sequence_that_cannot_be_written_blocks_no_other(repo_path):
    run = Run(repo=repo_path, flush_interval=0.05)
    # Its payload goes to a blob file, and the blob folder cannot be made: a file holds its name.
    (repo_path / ".aim_core" / "blobs").write_text("in the way")
    run.track(Text("x" * 100_000), name="pictures")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(100):
            run.track(float(i), name="loss")
        run.flush()
        run._writer.flush_quietly()
    assert run.get_metric("loss").count == 100
    assert sum("could not write sequence 'pictures'" in str(w.message) for w in caught) == 1
    with pytest.raises(StorageError, match="1 points could not be written"):
        run.close()
    stored = Repo(repo_path).get_run(run.hash)
    assert stored.status == "finished" and stored.get_metric("loss").count == 100


def test_flush_writes_extra_keys_in_the_same_transaction(repo_path):
    run = Run(repo=repo_path, flush_interval=3600)
    run.track(1.0, name="x")
    run._writer.flush(extra={"remote/batch-1": {"points": 1}})
    with pytest.raises(ValueError, match="reserved"):
        run._writer.flush(extra={"props": {}})
    run.close()
    from aim_core.storage.run_reader import RunFile

    stored = RunFile(repo_path / ".aim_core" / "runs" / f"{run.hash}.sqlite", run.hash)
    assert stored.get("remote/batch-1") == {"points": 1}
    stored.close()


def test_other_producers_buffer_points_with_explicit_timestamps(repo_path):
    run = Run(repo=repo_path)
    seq = run._writer.new_sequence("gpu", {"gpu": 0})
    seq.add(None, 50.0, timestamp=1000.0)
    seq.add(5, 60.0, 1.0, 1001.0)
    with pytest.raises(ValueError, match="int64"):
        seq.add(2**63, 1.0)
    run.track(70.0, name="gpu", context={"gpu": 0})  # goes on after the last step
    run.close()
    metric = Repo(repo_path).get_run(run.hash).get_metric("gpu", {"gpu": 0})
    assert metric.steps.tolist() == [0, 5, 6]
    assert metric.timestamps[:2].tolist() == [1000.0, 1001.0]
