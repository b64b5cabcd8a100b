"""The installed ``aim-core`` command, run in a subprocess for every subcommand and error path."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aim_core import Repo, Run
from aim_core.storage import flusher

AIM_CORE = Path(sys.executable).parent / "aim-core"


def aim_core(*args: str, cwd: Path, check: int | None = 0) -> subprocess.CompletedProcess:
    """Run the console script; assert its exit code when ``check`` is given."""
    env = {k: v for k, v in os.environ.items() if k != "AIM_CORE_REPO"}
    done = subprocess.run([str(AIM_CORE), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    if check is not None:
        assert done.returncode == check, (done.stdout, done.stderr)
    return done


def make_run(path: Path, name: str, lr: float | None, loss: list[float], **props) -> str:
    """A finished run with ``loss`` in train and val contexts."""
    with Run(repo=path, experiment=props.get("experiment", "exp"),
             system_tracking_interval=None) as run:
        run.name = name
        if lr is not None:
            run["hparams"] = {"lr": lr, "opt": "adam"}
        for step, value in enumerate(loss):
            run.track(value, name="loss", step=step, epoch=0, context={"subset": "train"})
            run.track(value * 2, name="loss", step=step, context={"subset": "val"})
        run.archived = props.get("archived", False)
        return run.hash


@pytest.fixture
def repo(tmp_path):
    """A repo with three runs (one archived); the test process holds nothing open."""
    path = tmp_path / "repo"
    hashes = {
        "alpha": make_run(path, "alpha", 0.01, [1.0, 0.5, 0.25]),
        "beta": make_run(path, "beta", 0.1, [2.0, 1.0]),
        "gamma": make_run(path, "gamma", None, [3.0], archived=True),
    }
    flusher.close_all()
    return path, hashes


def rows_of(text: str) -> list[dict[str, str]]:
    """Parse csv output."""
    return list(csv.DictReader(io.StringIO(text)))


def test_command_is_installed_and_shows_help(tmp_path):
    assert AIM_CORE.exists(), "install the project (pip install -e .) to get the aim-core script"
    assert "runs" in aim_core("--help", cwd=tmp_path).stdout
    assert aim_core("--version", cwd=tmp_path).stdout.startswith("aim-core ")
    assert aim_core(cwd=tmp_path, check=2).returncode == 2
    assert aim_core("runs", cwd=tmp_path, check=2).returncode == 2
    assert "invalid choice" in aim_core("bogus", cwd=tmp_path, check=2).stderr


def test_init_creates_a_repo_once(tmp_path):
    done = aim_core("init", str(tmp_path / "new"), cwd=tmp_path)
    assert "Initialized" in done.stdout
    assert (tmp_path / "new" / ".aim_core" / "index.sqlite").exists()
    assert "already exists" in aim_core("init", str(tmp_path / "new"), cwd=tmp_path).stdout
    aim_core("init", cwd=tmp_path / "new")  # no path: the working directory
    assert list(Repo(tmp_path / "new").iter_runs()) == []
    (tmp_path / "file").write_text("x")
    assert "is a file" in aim_core("init", str(tmp_path / "file"), cwd=tmp_path, check=1).stderr


def test_missing_repo_is_an_error(tmp_path):
    done = aim_core("runs", "ls", cwd=tmp_path, check=1)
    assert "No aim-core repo" in done.stderr and "aim-core init" in done.stderr
    assert aim_core("runs", "ls", "--repo", str(tmp_path / "nope"), cwd=tmp_path,
                    check=1).returncode == 1


@pytest.mark.parametrize("command", [("runs", "ls"), ("reindex",), ("export", "abc", "--format",
                                                                    "csv")])
def test_a_missing_repo_says_what_to_do_on_the_command_line(tmp_path, command):
    missing = tmp_path / "no repo"
    done = aim_core(*command, "--repo", str(missing), cwd=tmp_path, check=1)
    assert f"No aim-core repo at {missing}" in done.stderr
    assert f"aim-core init '{missing}'" in done.stderr and "--repo" in done.stderr
    assert "init=True" not in done.stderr


def test_runs_ls_formats_params_metrics_and_queries(repo, tmp_path):
    path, hashes = repo
    table = aim_core("--repo", str(path), "runs", "ls", cwd=tmp_path).stdout
    assert hashes["alpha"] in table and hashes["beta"] in table
    assert hashes["gamma"] not in table  # archived
    assert table.splitlines()[0].split()[:6] == ["hash", "name", "experiment", "status",
                                                "created", "duration"]
    done = aim_core("runs", "ls", "--repo", str(path), "--format", "csv", "-p", "hparams.lr",
                    "-m", "loss:subset=val", cwd=tmp_path)
    rows = {row["name"]: row for row in rows_of(done.stdout)}
    assert set(rows) == {"alpha", "beta"}
    assert rows["alpha"]["hparams.lr"] == "0.01" and rows["beta"]["hparams.lr"] == "0.1"
    assert float(rows["alpha"]["loss:subset=val"]) == 0.5
    assert rows["alpha"]["status"] == "finished" and rows["alpha"]["experiment"] == "exp"
    records = json.loads(aim_core("runs", "ls", "--repo", str(path), "-a", "--format", "json",
                                  cwd=tmp_path).stdout)
    assert {r["name"] for r in records} == {"alpha", "beta", "gamma"}
    queried = aim_core("runs", "ls", "--repo", str(path), "-q", "run.hparams.lr > 0.05",
                       "--format", "csv", cwd=tmp_path).stdout
    assert [row["name"] for row in rows_of(queried)] == ["beta"]
    bad = aim_core("runs", "ls", "--repo", str(path), "-q", "run.hparams.lr >", cwd=tmp_path,
                   check=2)
    assert "column 17" in bad.stderr
    assert aim_core("runs", "ls", "--repo", str(path), "-m", "loss:subset", cwd=tmp_path,
                    check=2).returncode == 2


def test_runs_show(repo, tmp_path):
    path, hashes = repo
    done = aim_core("runs", "show", hashes["alpha"][:8], "--repo", str(path), cwd=tmp_path)
    assert f"run {hashes['alpha']}" in done.stdout
    assert "hparams.lr = 0.01" in done.stdout
    lines = [line.split() for line in done.stdout.splitlines()]
    assert ["loss", '{"subset":"val"}', "metric", "3", "0", "2", "0.5", "0.5", "2"] in lines
    data = json.loads(aim_core("runs", "show", hashes["beta"], "--format", "json", "--repo",
                               str(path), cwd=tmp_path).stdout)
    assert data["params"]["hparams"]["lr"] == 0.1 and data["status"] == "finished"
    assert {s["context"]["subset"] for s in data["sequences"]} == {"train", "val"}
    missing = aim_core("runs", "show", "doesnotexist", "--repo", str(path), cwd=tmp_path,
                       check=1)
    assert "is not a run" in missing.stderr


def test_query_runs_and_metrics(repo, tmp_path):
    path, hashes = repo
    runs = aim_core("query", 'run.name == "beta"', "--repo", str(path), "--format", "csv",
                    cwd=tmp_path).stdout
    assert [row["hash"] for row in rows_of(runs)] == [hashes["beta"]]
    metrics = aim_core("query", 'metric.context.subset == "val" and metric.last < 1',
                       "--metrics", "--repo", str(path), "--format", "json",
                       cwd=tmp_path).stdout
    assert [(m["run"], m["metric"], m["context"], m["last"]) for m in json.loads(metrics)] == [
        (hashes["alpha"], "loss", {"subset": "val"}, 0.5)]
    table = aim_core("query", "metric.count == 1 and run.archived", "--metrics", "--repo",
                     str(path), cwd=tmp_path).stdout
    assert hashes["gamma"] in table
    bad = aim_core("query", '__import__("os").system("touch pwned")', "--repo", str(path),
                   cwd=tmp_path, check=2)
    assert "bad query" in bad.stderr and not (tmp_path / "pwned").exists()
    assert aim_core("query", "metric.name", "--repo", str(path), cwd=tmp_path,
                    check=2).returncode == 2


def test_export_csv_json_parquet(repo, tmp_path):
    path, hashes = repo
    done = aim_core("export", hashes["alpha"], hashes["beta"], "--format", "csv", "--repo",
                    str(path), cwd=tmp_path)
    rows = rows_of(done.stdout)
    assert len(rows) == 2 * 3 + 2 * 2
    first = rows[0]
    assert first["run_hash"] == hashes["alpha"] and first["metric"] == "loss"
    assert json.loads(first["context"]) in ({"subset": "train"}, {"subset": "val"})
    assert "exporting" in done.stderr  # progress on stderr, data on stdout
    out = tmp_path / "points.json"
    aim_core("export", "--query", 'metric.context.subset == "val"', "--format", "json", "-o",
             str(out), "--repo", str(path), cwd=tmp_path)
    records = json.loads(out.read_text())
    by_run = {r["run_hash"]: r for r in records}
    assert set(by_run) == {hashes["alpha"], hashes["beta"]}
    assert by_run[hashes["alpha"]]["values"] == [2.0, 1.0, 0.5]
    assert by_run[hashes["alpha"]]["epochs"] == [None, None, None]
    parquet = tmp_path / "points.parquet"
    aim_core("export", hashes["gamma"], "--format", "parquet", "-o", str(parquet), "--repo",
             str(path), cwd=tmp_path)
    import pandas as pd

    frame = pd.read_parquet(parquet)
    assert list(frame["value"]) == [3.0, 6.0] and set(frame["run_hash"]) == {hashes["gamma"]}


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted(tmp_path):
    from aim_core import Text

    path = tmp_path / "repo"
    with Run(repo=path, system_tracking_interval=None) as run:
        run.name = '=HYPERLINK("http://x.invalid","open")'
        run["hparams"] = {"opt": "@SUM(A1)", "lr": -0.5}
        run.track(-0.5, name="+cmd", step=0)
        run.track(Text("-2+3"), name="notes", step=0)
        run_hash = run.hash
    flusher.close_all()

    listed = rows_of(aim_core("runs", "ls", "--repo", str(path), "--format", "csv", "-p",
                              "hparams.opt", "-p", "hparams.lr", cwd=tmp_path).stdout)
    assert listed[0]["name"] == '\'=HYPERLINK("http://x.invalid","open")'
    assert (listed[0]["hparams.opt"], listed[0]["hparams.lr"]) == ("'@SUM(A1)", "-0.5")
    points = rows_of(aim_core("export", run_hash, "--format", "csv", "--repo", str(path),
                              cwd=tmp_path).stdout)
    assert (points[0]["metric"], points[0]["value"]) == ("'+cmd", "-0.5")
    texts = rows_of(aim_core("export", run_hash, "--kind", "text", "--format", "csv",
                             "--repo", str(path), cwd=tmp_path).stdout)
    assert texts[0]["text"] == "'-2+3"


def test_export_errors(repo, tmp_path):
    path, hashes = repo
    assert aim_core("export", "--format", "csv", "--repo", str(path), cwd=tmp_path,
                    check=2).returncode == 2
    assert "-o FILE" in aim_core("export", hashes["alpha"], "--format", "parquet", "--repo",
                                 str(path), cwd=tmp_path, check=2).stderr
    assert "is not a run" in aim_core("export", "nope", "--format", "csv", "--repo", str(path),
                                      cwd=tmp_path, check=1).stderr
    assert aim_core("export", "--query", "metric.last >", "--format", "csv", "--repo",
                    str(path), cwd=tmp_path, check=2).returncode == 2
    assert aim_core("export", hashes["alpha"], "--format", "xml", "--repo", str(path),
                    cwd=tmp_path, check=2).returncode == 2


def test_archive_unarchive(repo, tmp_path):
    path, hashes = repo
    aim_core("runs", "archive", hashes["alpha"], "--repo", str(path), cwd=tmp_path)
    assert Repo(path).get_run(hashes["alpha"]).archived is True
    aim_core("runs", "unarchive", hashes["alpha"], hashes["gamma"], "--repo", str(path),
             cwd=tmp_path)
    assert Repo(path).get_run(hashes["gamma"]).archived is False
    listed = aim_core("runs", "ls", "--repo", str(path), "--format", "csv", cwd=tmp_path).stdout
    assert {row["name"] for row in rows_of(listed)} == {"alpha", "beta", "gamma"}
    assert aim_core("runs", "archive", "nope", "--repo", str(path), cwd=tmp_path,
                    check=1).returncode == 1


def test_close_a_crashed_run_and_refuse_a_live_one(repo, tmp_path):
    path, _ = repo
    script = textwrap.dedent(f"""
        import os
        from aim_core import Run
        run = Run(repo={str(path)!r})
        run.track(1.0, name="loss")
        run.flush()
        print(run.hash, flush=True)
        os._exit(0)  # dies without closing: the run is left crashed
    """)
    crashed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             check=True, timeout=60).stdout.strip()
    assert Repo(path).get_run(crashed).status == "crashed"
    aim_core("runs", "close", crashed, "--repo", str(path), cwd=tmp_path)
    assert Repo(path).get_run(crashed).status == "finished"

    live = Run(repo=path)
    try:
        live.track(1.0, name="loss")
        live.flush()
        done = aim_core("runs", "close", live.hash, "--repo", str(path), cwd=tmp_path, check=1)
        assert str(os.getpid()) in done.stderr  # names the holder
        assert aim_core("runs", "archive", live.hash, "--repo", str(path), cwd=tmp_path,
                        check=1).returncode == 1
    finally:
        live.close()


def test_rm_needs_confirmation(repo, tmp_path):
    path, hashes = repo
    done = aim_core("runs", "rm", hashes["alpha"], "--repo", str(path), cwd=tmp_path, check=2)
    assert "--yes" in done.stderr
    assert Repo(path).run_exists(hashes["alpha"])
    aim_core("runs", "rm", hashes["alpha"], "-y", "--repo", str(path), cwd=tmp_path)
    assert not Repo(path).run_exists(hashes["alpha"])
    assert aim_core("runs", "rm", hashes["alpha"], "-y", "--repo", str(path), cwd=tmp_path,
                    check=1).returncode == 1


def test_cp_and_mv(repo, tmp_path):
    path, hashes = repo
    dest = tmp_path / "dest"
    aim_core("runs", "cp", hashes["alpha"], "--dest", str(dest), "--repo", str(path),
             cwd=tmp_path)
    assert Repo(dest).get_run(hashes["alpha"]).get_metric("loss", {"subset": "val"}).last == 0.5
    assert Repo(path).run_exists(hashes["alpha"])
    aim_core("runs", "mv", hashes["beta"], "--dest", str(dest), "--repo", str(path),
             cwd=tmp_path)
    assert Repo(dest).run_exists(hashes["beta"]) and not Repo(path).run_exists(hashes["beta"])
    again = aim_core("runs", "cp", hashes["alpha"], "--dest", str(dest), "--repo", str(path),
                     cwd=tmp_path, check=1)
    assert hashes["alpha"] in again.stderr
    assert aim_core("runs", "mv", "nope", "--dest", str(dest), "--repo", str(path),
                    cwd=tmp_path, check=1).returncode == 1
    assert aim_core("runs", "cp", hashes["alpha"], "--repo", str(path), cwd=tmp_path,
                    check=2).returncode == 2  # --dest is required


def test_up_serves_the_dashboard_until_sigterm(repo, tmp_path):
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    import signal
    import urllib.request

    path, _ = repo
    server = subprocess.Popen([str(AIM_CORE), "up", "--repo", str(path), "--port", "0"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        url = None
        for line in server.stdout:
            if line.startswith("Open "):
                url = line.split()[1]
                break
        assert url and url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
    assert aim_core("up", "--repo", str(tmp_path / "none"), cwd=tmp_path,
                    check=1).returncode == 1
