"""``aim-core convert mlflow``: an MLflow sqlite store written through MLflow's client."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("mlflow")
pytest.importorskip("sqlalchemy")

from convert_cli import by_name, entries, run_cli  # noqa: E402
from mlflow.entities import Metric, Param  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from aim_core.convert import mlflow as mlflow_convert  # noqa: E402
from aim_core.convert.mlflow import convert_mlflow, parse_param  # noqa: E402
from aim_core.convert.writing import finished_props, write_run  # noqa: E402
from aim_core.errors import ConvertError  # noqa: E402

T0 = 1_700_000_000_000  # ms, as MLflow stores times


def log(client: MlflowClient, run_id: str, key: str, values: list[float], steps=None,
        start: int = 0) -> None:
    """Log one metric's history in one batch, at T0 + 10 ms per step."""
    steps = steps if steps is not None else list(range(start, start + len(values)))
    client.log_batch(run_id, metrics=[Metric(key, v, T0 + 10 * i, s) for i, (v, s) in
                                      enumerate(zip(values, steps, strict=True), start)])


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with two experiments and runs that finished, failed and still run."""
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(uri)
    cls = client.create_experiment("cls", artifact_location=str(folder / "artifacts"))
    seg = client.create_experiment("seg", artifact_location=str(folder / "artifacts"))
    ids = {}
    run = client.create_run(cls, start_time=T0, run_name="baseline",
                            tags={"team": "vision", "mlflow.note.content": "first try"})
    client.log_batch(run.info.run_id, params=[
        Param("lr", "0.001"), Param("batch_size", "32"), Param("optimizer", "adam"),
        Param("dropout", "1e-1"), Param("seed", "-7"), Param("use_amp", "True"),
        Param("nan_text", "nan")])
    log(client, run.info.run_id, "loss", [1.0, 0.5, 0.25, 0.125])
    log(client, run.info.run_id, "val_acc", [0.5, 0.75], steps=[0, 100])
    log(client, run.info.run_id, "no_step", [3.0, 2.0, 1.0], steps=[0, 0, 0])
    client.set_terminated(run.info.run_id, "FINISHED", end_time=T0 + 60_000)
    ids["baseline"] = run.info.run_id
    run = client.create_run(cls, start_time=T0 + 1000, run_name="broken")
    log(client, run.info.run_id, "loss", [9.0])
    client.set_terminated(run.info.run_id, "FAILED", end_time=T0 + 2000)
    ids["broken"] = run.info.run_id
    run = client.create_run(seg, start_time=T0 + 5000, run_name="live",
                            tags={"wip": ""})
    log(client, run.info.run_id, "loss", [4.0, 3.0])
    ids["live"] = run.info.run_id
    return {"uri": uri, "path": folder / "mlflow.db", "ids": ids}


@pytest.fixture
def own_store(store, tmp_path):
    """A private copy of the store, for tests that change it."""
    path = tmp_path / "mlflow.db"
    shutil.copy(store["path"], path)
    return {**store, "uri": f"sqlite:///{path}", "client": MlflowClient(f"sqlite:///{path}")}


def test_numeric_params_become_numbers():
    assert parse_param("0.001") == 0.001 and parse_param("32") == 32
    assert parse_param("-7") == -7 and parse_param("1e-1") == 0.1
    assert parse_param("adam") == "adam" and parse_param("True") == "True"
    assert parse_param("nan") == "nan" and parse_param("inf") == "inf"
    assert parse_param("1_000") == "1_000" and parse_param("") == ""


def test_a_param_is_a_number_only_when_it_reads_back_the_same():
    assert parse_param("007") == "007" and parse_param("+5") == "+5"
    assert parse_param("-0") == "-0" and parse_param("00.5") == "00.5"
    assert parse_param("1e400") == "1e400" and parse_param("0.5") == 0.5
    assert parse_param("0.10000000000000000000001") == "0.10000000000000000000001"
    huge = "123456789012345678901234567890"
    assert parse_param(huge) == huge
    assert parse_param(str(2**63 - 1)) == 2**63 - 1 and parse_param(str(2**63)) == str(2**63)
    assert parse_param(str(-2**63)) == -2**63


def test_a_long_numeric_param_and_a_zip_code_are_kept_as_text(own_store, repo):
    client = own_store["client"]
    exp = client.get_experiment_by_name("seg").experiment_id
    run = client.create_run(exp, run_name="job")
    client.log_batch(run.info.run_id, params=[
        Param("job_id", "123456789012345678901234567890"), Param("zip", "007")])
    log(client, run.info.run_id, "loss", [1.0])

    result = run_cli("convert", "mlflow", "--tracking-uri", own_store["uri"], "--repo",
                     str(repo.path), "--no-progress")

    assert result.returncode == 0, result.stderr
    assert by_name(repo)["job"]["params"] == {"job_id": "123456789012345678901234567890",
                                              "zip": "007"}


def test_every_run_param_tag_and_point_is_converted(store, repo):
    report = convert_mlflow(store["uri"], repo)

    assert report.ok, report.text()
    assert (report.runs_new, report.points) == (3, 4 + 2 + 3 + 1 + 2)
    runs = by_name(repo)
    assert set(runs) == {"baseline", "broken", "live"}
    run = runs["baseline"]
    assert run.hash == store["ids"]["baseline"]
    assert (run.experiment, run.description, run.tags) == ("cls", "first try", ["team=vision"])
    assert (run.creation_time, run.end_time, run.status) == (T0 / 1000, T0 / 1000 + 60,
                                                             "finished")
    assert run["params"] == {"lr": 0.001, "batch_size": 32, "optimizer": "adam",
                             "dropout": 0.1, "seed": -7, "use_amp": "True",
                             "nan_text": "nan"}
    assert run["mlflow", "run_id"] == store["ids"]["baseline"]
    assert run["mlflow", "tags", "team"] == "vision"
    loss = run.get_metric("loss")
    assert loss.steps.tolist() == [0, 1, 2, 3]
    assert loss.values.tolist() == [1.0, 0.5, 0.25, 0.125]
    assert loss.timestamps.tolist() == [(T0 + 10 * i) / 1000 for i in range(4)]
    acc = run.get_metric("val_acc")
    assert (acc.steps.tolist(), acc.values.tolist()) == ([0, 100], [0.5, 0.75])
    no_step = run.get_metric("no_step")  # logged without steps: position is the step
    assert (no_step.steps.tolist(), no_step.values.tolist()) == ([0, 1, 2], [3.0, 2.0, 1.0])
    assert sum(report.notes.values()) == 1
    assert runs["broken"].status == "failed"
    live = runs["live"]
    assert (live.status, live.end_time, live.experiment, live.tags) == ("crashed", None,
                                                                      "seg", ["wip"])


def test_converting_twice_adds_nothing_and_new_points_are_added(own_store, repo):
    client, live = own_store["client"], own_store["ids"]["live"]
    convert_mlflow(own_store["uri"], repo)
    before = entries(repo)

    again = convert_mlflow(own_store["uri"], repo)
    assert (again.runs_new, again.runs_updated, again.runs_unchanged) == (0, 0, 3)
    assert entries(repo) == before

    log(client, live, "loss", [2.0, 1.0], start=2)
    client.set_terminated(live, "FINISHED", end_time=T0 + 9000)
    later = convert_mlflow(own_store["uri"], repo)

    assert (later.runs_updated, later.runs_unchanged, later.points) == (1, 2, 2)
    run = repo.get_run(live)
    assert run.get_metric("loss").values.tolist() == [4.0, 3.0, 2.0, 1.0]
    assert (run.status, run.end_time) == ("finished", (T0 + 9000) / 1000)
    assert len(repo.list_runs()) == 3


def test_search_results_are_read_page_by_page(own_store, repo, monkeypatch):
    client = own_store["client"]
    exp = client.get_experiment_by_name("seg").experiment_id
    for i in range(4):
        run = client.create_run(exp, run_name=f"extra{i}")
        log(client, run.info.run_id, "loss", [float(i)])
    monkeypatch.setattr(mlflow_convert, "PAGE", 2)

    report = convert_mlflow(own_store["uri"], repo)

    assert report.runs_new == 7
    assert {f"extra{i}" for i in range(4)} <= set(by_name(repo))


def test_one_experiment_by_name(store, repo):
    report = convert_mlflow(store["uri"], repo, experiment="seg")

    assert report.runs_new == 1 and set(by_name(repo)) == {"live"}
    with pytest.raises(ConvertError, match="No MLflow experiment named 'nope'"):
        convert_mlflow(store["uri"], repo, experiment="nope")


def test_cli_converts_and_reports_a_missing_store(store, repo, tmp_path):
    result = run_cli("convert", "mlflow", "--tracking-uri", store["uri"], "--repo",
                     str(repo.path), "--no-progress")

    assert result.returncode == 0, result.stderr
    assert "3 new run(s)" in result.stderr and "12 point(s)" in result.stderr
    missing = run_cli("convert", "mlflow", "--tracking-uri",
                      f"sqlite:///{tmp_path / 'none.db'}", "--repo", str(repo.path))
    assert missing.returncode == 1 and "No MLflow database" in missing.stderr
    assert not (tmp_path / "none.db").exists()


def test_a_param_that_cannot_be_stored_is_named_by_its_path(repo):
    props = finished_props("job", "default", T0 / 1000, T0 / 1000, "finished", {})
    with pytest.raises(ValueError, match=r"Param params\.job_id = \d+ is outside the int64"):
        write_run(repo, "a" * 24, props, {"params": {"job_id": 2**70}}, [])


def test_a_run_already_holding_the_hash_is_left_alone_saying_what_to_do(store, repo):
    taken = store["ids"]["broken"]
    write_run(repo, taken, finished_props("mine", "default", T0 / 1000, T0 / 1000, "finished",
                                          {}), {"mine": 1}, [])
    report = convert_mlflow(store["uri"], repo)

    ((what, why),) = report.failures
    assert taken in what and f"Run {taken} already exists" in why
    assert f"aim-core runs rm {taken}" in why and "--repo" in why
    assert repo.get_run(taken)["mine"] == 1 and report.runs_new == 2
