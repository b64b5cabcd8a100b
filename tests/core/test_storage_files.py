"""Run files on disk: one compact file per closed run, old formats, interrupted closes."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlitedict import SqliteDict

from aim_core import Repo, Run
from aim_core.storage.kvfile import decode, encode
from aim_core.storage.run_file import FORMAT_VERSION

FIXTURE = Path(__file__).parent.parent / "fixtures" / "repo_v1"
V1_FINISHED, V1_ARCHIVED = "378872c251944289a380edc2", "bca78112bb91420e8fdb89e6"


def _run_files(repo_path: Path) -> list[str]:
    return sorted(os.listdir(repo_path / ".aim_core" / "runs"))


def test_a_closed_run_is_one_compact_file_that_needs_no_side_files(repo_path):
    run = Run(repo=repo_path)
    run["hparams"] = {"lr": 0.1}
    for i in range(5000):
        run.track(float(i), name="loss", step=i)
        if i % 1000 == 0:
            run.flush()  # chunk merges leave free pages behind in the live file
    assert f"{run.hash}.sqlite-wal" in _run_files(repo_path)  # live: WAL mode
    assert f"{run.hash}.lock" in _run_files(repo_path)
    run.close()
    assert _run_files(repo_path) == [f"{run.hash}.sqlite"]  # no -wal, -shm or .lock left
    path = repo_path / ".aim_core" / "runs" / f"{run.hash}.sqlite"
    header = path.read_bytes()[:100]
    assert header[18:20] == b"\x01\x01"  # rollback-journal mode: readers need no -shm
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    assert _run_files(repo_path) == [f"{run.hash}.sqlite"]


def test_a_run_file_opens_through_sqlitedict(repo_path):
    with Run(repo=repo_path, experiment="exp", system_tracking_interval=None) as run:
        run["hparams"] = {"lr": 0.1}
        run.track(1.5, name="loss", context={"subset": "train"})
    path = repo_path / ".aim_core" / "runs" / f"{run.hash}.sqlite"
    with SqliteDict(str(path), tablename="run", flag="r", encode=encode, decode=decode) as db:
        assert db["format"] == FORMAT_VERSION
        assert db["params"] == {"hparams": {"lr": 0.1}}
        assert db["props"]["experiment"] == "exp"
        (info,) = [v for k, v in db.items() if k.startswith("seq/")]
        assert (info["name"], info["context"], info["kind"], info["last"]) == (
            "loss", {"subset": "train"}, "metric", 1.5)
    index = repo_path / ".aim_core" / "index.sqlite"  # in WAL mode: sqlitedict must keep it
    with SqliteDict(str(index), tablename="runs", flag="r", encode=encode, decode=decode,
                    journal_mode="WAL") as db:
        assert db[run.hash]["params"] == {"hparams": {"lr": 0.1}}


def test_reading_a_closed_run_writes_nothing(repo_path):
    with Run(repo=repo_path) as run:
        run.track(1.0, name="x")
    before = _run_files(repo_path)
    stored = Repo(repo_path).get_run(run.hash)
    assert stored.get_metric("x").values.tolist() == [1.0]
    assert _run_files(repo_path) == before


def test_format_1_repo_reads_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv("AIM_CORE_FLUSH_INTERVAL", "0.2")
    shutil.copytree(FIXTURE, tmp_path / "repo")
    repo = Repo(tmp_path / "repo")
    runs = {run.hash: run for run in repo.iter_runs()}
    assert set(runs) == {V1_FINISHED, V1_ARCHIVED}
    old = repo.get_run(V1_FINISHED)
    assert (old.name, old.experiment, old.tags, old.status) == ("v1 run", "fixture", ["old"],
                                                                 "finished")
    assert old["hparams"] == {"lr": 0.001, "layers": [64, 32], "opt": {"name": "adam"}}
    loss = old.get_metric("loss", {"subset": "train"})
    assert loss.steps.tolist() == list(range(100)) and loss.last == pytest.approx(0.01)
    assert loss.epochs[:11].tolist() == [0.0] * 10 + [1.0]
    assert runs[V1_ARCHIVED].archived and repo.get_run(V1_ARCHIVED).status == "failed"
    assert repo.query_runs("run.hparams.lr < 0.01").hashes() == [V1_FINISHED]
    resumed = Run(V1_FINISHED, repo=repo)
    for step in range(95, 105):  # re-logs 95-99 and goes on
        resumed.track(2.0, name="loss", step=step, context={"subset": "train"})
    resumed.close()
    loss = repo.get_run(V1_FINISHED).get_metric("loss", {"subset": "train"})
    assert loss.steps.tolist() == list(range(105)) and loss.count == 105
    assert loss.values[94] == pytest.approx(1 / 95) and loss.values[95:].tolist() == [2.0] * 10
    assert repo.get_run(V1_FINISHED).get_metric("acc", {"subset": "val"}).count == 10
    path = tmp_path / "repo" / ".aim_core" / "runs" / f"{V1_FINISHED}.sqlite"
    with SqliteDict(str(path), tablename="run", flag="r", encode=encode, decode=decode) as db:
        assert db["format"] == FORMAT_VERSION and "sequences" not in db


def test_resumed_run_re_logging_steps_shows_each_step_once(repo_path):
    with Run(repo=repo_path) as run:
        for step in range(12):
            run.track(float(step), name="loss", step=step)
    resumed = Run(run.hash, repo=repo_path)  # training resumed from the checkpoint of step 5
    for step in range(6, 15):
        resumed.track(100.0 + step, name="loss", step=step)
    resumed.close()
    loss = Repo(repo_path).get_run(run.hash).get_metric("loss")
    assert loss.steps.tolist() == list(range(15))
    assert loss.values.tolist() == [0, 1, 2, 3, 4, 5] + [100.0 + s for s in range(6, 15)]
    assert (loss.count, loss.first, loss.last, loss.min, loss.max) == (15, 0, 114, 0, 114)
    listed = Repo(repo_path).query_metrics('metric.name == "loss"').summaries()
    assert [(s["count"], s["last"]) for s in listed] == [(15, 114.0)]


def test_an_interrupted_close_is_finished_or_undone(repo_path):
    runs = repo_path / ".aim_core" / "runs"
    with Run(repo=repo_path) as run:
        for step in range(5):
            run.track(float(step), name="x")
    first = (runs / f"{run.hash}.sqlite").read_bytes()
    more = Run(run.hash, repo=repo_path)
    for step in range(5, 10):
        more.track(float(step), name="x")
    more.close()
    # Killed after the synced copy was complete and the WAL unlinked, before the rename:
    (runs / f"{run.hash}.closing").write_bytes((runs / f"{run.hash}.sqlite").read_bytes())
    (runs / f"{run.hash}.sqlite").write_bytes(first)
    Run(run.hash, repo=repo_path).close()
    assert Repo(repo_path).get_run(run.hash).get_metric("x").count == 10
    assert _run_files(repo_path) == [f"{run.hash}.sqlite"]
    # Killed while the copy was written, the WAL still holding data: the copy goes.
    (runs / f"{run.hash}.closing").write_bytes(first[:4096])
    (runs / f"{run.hash}.sqlite-wal").write_bytes(b"\0" * 100)
    Run(run.hash, repo=repo_path).close()
    assert Repo(repo_path).get_run(run.hash).get_metric("x").count == 10
    assert _run_files(repo_path) == [f"{run.hash}.sqlite"]


SYNCS = textwrap.dedent("""
    import sys
    from aim_core import Repo, Run
    Repo(sys.argv[1], init=True)
    for i in range(int(sys.argv[2])):
        run = Run(repo=sys.argv[1])
        run["hparams"] = {"i": i, "lr": 0.1}
        for step in range(1000):
            run.track(step * 0.5, name="loss", step=step)
            run.track(step * 0.1, name="acc", step=step)
        run.close()
""")


def _syncs_of_sweep(folder: Path, runs: int) -> int:
    trace = folder / f"trace{runs}"
    subprocess.run(["strace", "-f", "-c", "-o", str(trace), "-e",
                    "trace=fsync,fdatasync,sync_file_range,syncfs",
                    sys.executable, "-c", SYNCS, str(folder / f"repo{runs}"), str(runs)],
                   check=True, timeout=300)
    return sum(int(line.split()[3]) for line in trace.read_text().splitlines()
               if line.split() and line.split()[-1] in ("fsync", "fdatasync", "syncfs",
                                                        "sync_file_range"))


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_a_sweep_syncs_once_per_run(tmp_path):
    few, more = _syncs_of_sweep(tmp_path, 10), _syncs_of_sweep(tmp_path, 30)
    assert few >= 10
    assert more - few <= 20  # each further run: one sync (its closed file), nothing else


def test_a_large_file_is_closed_in_place_without_side_files(repo_path, monkeypatch):
    from aim_core.storage import run_file

    monkeypatch.setattr(run_file, "COMPACT_LIMIT", 0)  # as if the file were larger than 64 MiB
    with Run(repo=repo_path) as run:
        for i in range(3000):
            run.track(float(i), name="x")
    assert _run_files(repo_path) == [f"{run.hash}.sqlite"]
    path = repo_path / ".aim_core" / "runs" / f"{run.hash}.sqlite"
    assert path.read_bytes()[18:20] == b"\x01\x01"
    assert Repo(repo_path).get_run(run.hash).get_metric("x").count == 3000


def test_readers_see_a_run_that_was_resumed_and_closed_again(repo_path):
    with Run(repo=repo_path) as run:
        for step in range(5):
            run.track(float(step), name="x")
    repo = Repo(repo_path)
    assert repo.get_run(run.hash).get_metric("x").count == 5  # this thread keeps the file open
    for start in (5, 10):  # each close replaces the file with a new compact one
        with Run(run.hash, repo=repo_path) as more:
            for step in range(start, start + 5):
                more.track(float(step), name="x")
    assert repo.get_run(run.hash).get_metric("x").values.tolist() == [float(s) for s in range(15)]
