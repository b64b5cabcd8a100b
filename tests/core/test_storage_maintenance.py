"""rm/cp/mv survive kill -9 at any point; the next command repairs; imports are atomic."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from aim_core import Repo, Run
from aim_core.errors import AimCoreError
from aim_core.storage.importer import write_run

AIM_CORE = Path(sys.executable).parent / "aim-core"


def _runs(repo_path: Path, count: int, points: int = 20) -> list[str]:
    hashes = []
    for i in range(count):
        with Run(repo=repo_path) as run:
            run["i"] = i
            for step in range(points):
                run.track(float(step), name="x", step=step)
        hashes.append(run.hash)
    return hashes


def _files(repo_path: Path) -> list[str]:
    return sorted(os.listdir(repo_path / ".aim_core" / "runs"))


def test_an_interrupted_delete_is_finished_by_the_next_command(repo_path):
    gone, kept = _runs(repo_path, 2)
    runs = repo_path / ".aim_core" / "runs"
    os.rename(runs / f"{gone}.sqlite", runs / f"{gone}.deleting")  # killed right after
    repo = Repo(repo_path)
    assert repo.delete_runs([]) == (True, [])  # any rm/cp/mv first repairs
    assert repo.list_runs() == [kept] and _files(repo_path) == [f"{kept}.sqlite"]


def test_a_copy_without_catalog_entry_is_adopted_and_a_partial_one_removed(repo_path, tmp_path):
    (run_hash,) = _runs(repo_path, 1)
    dest = Repo(tmp_path / "dest", init=True)
    dest_runs = tmp_path / "dest" / ".aim_core" / "runs"
    source_file = repo_path / ".aim_core" / "runs" / f"{run_hash}.sqlite"
    (dest_runs / "abcdef.copying").write_bytes(source_file.read_bytes()[:5000])
    (dest_runs / f"{run_hash}.sqlite").write_bytes(source_file.read_bytes())  # no entry yet
    assert sorted(dest.repair()) == [f"adopted run {run_hash} (its file had no catalog entry)",
                                     "removed an unfinished copy or import of run abcdef"]
    assert dest.list_runs() == [run_hash]
    assert dest.get_run(run_hash).get_metric("x").count == 20


def test_an_interrupted_move_is_finished_or_undone(repo_path, tmp_path):
    moved, stays = _runs(repo_path, 2)
    repo, dest = Repo(repo_path), Repo(tmp_path / "dest", init=True)
    runs = repo_path / ".aim_core" / "runs"
    repo.copy_run(moved, dest)  # killed after the copy, before the source was deleted
    (runs / f"{moved}.moving").write_text(json.dumps({"dest": str(dest.root)}))
    (runs / f"{stays}.moving").write_text(json.dumps({"dest": str(dest.root)}))  # before copy
    done = sorted(repo.repair())
    assert done == [f"finished moving run {moved} to {dest.path}",
                    f"undid an unfinished move of run {stays}"]
    assert repo.list_runs() == [stays] and dest.list_runs() == [moved]
    assert _files(repo_path) == [f"{stays}.sqlite"]


def test_failures_name_their_real_cause(repo_path, tmp_path):
    (run_hash,) = _runs(repo_path, 1)
    dest = tmp_path / "dest"
    first = subprocess.run([str(AIM_CORE), "runs", "cp", run_hash, "--dest", str(dest),
                            "--repo", str(repo_path)], capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    again = subprocess.run([str(AIM_CORE), "runs", "cp", run_hash, "--dest", str(dest),
                            "--repo", str(repo_path)], capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "already exists" in again.stderr
    with Run(run_hash, repo=repo_path):
        locked = subprocess.run([str(AIM_CORE), "runs", "rm", run_hash, "--yes", "--repo",
                                 str(repo_path)], capture_output=True, text=True, timeout=60)
    assert locked.returncode == 1 and f"pid {os.getpid()}" in locked.stderr


MOVER = textwrap.dedent("""
    import sys
    from aim_core import Repo
    repo, dest = Repo(sys.argv[1]), Repo(sys.argv[2], init=True)
    print("ready", flush=True)
    for run_hash in sys.argv[3:]:
        {action}
""")


@pytest.mark.parametrize("action", ["move", "copy", "delete"])
def test_kill_9_during_rm_cp_mv_leaves_a_state_the_next_command_repairs(repo_path, tmp_path,
                                                                        action):
    hashes = _runs(repo_path, 12, points=2000)
    dest_path = tmp_path / "dest"
    call = {"move": "repo.move_run(run_hash, dest)", "copy": "repo.copy_run(run_hash, dest)",
            "delete": "repo.delete_run(run_hash)"}[action]
    rng = random.Random(7)
    remaining = list(hashes)
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", MOVER.format(action=call), str(repo_path),
                                 str(dest_path), *remaining], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        repo, dest = Repo(repo_path), Repo(dest_path, init=True)
        repo.repair()
        dest.repair()
        here, there = set(repo.list_runs()), set(dest.list_runs())
        if action == "move":
            assert here | there == set(hashes) and not here & there
        elif action == "copy":
            assert here == set(hashes) and there <= here
        else:
            assert here <= set(hashes) and not there
        for run_hash in here:
            assert repo.get_run(run_hash).get_metric("x").count == 2000
        for run_hash in there:
            assert dest.get_run(run_hash).get_metric("x").count == 2000
        leftovers = [n for n in _files(repo_path) + os.listdir(dest.runs_dir)
                     if not n.endswith(".sqlite")]
        assert leftovers == []
        done = there if action == "copy" else set(hashes) - here
        remaining = [h for h in hashes if h not in done]  # the next attempt does the rest


def test_write_run_imports_a_whole_run_atomically(repo_path):
    repo = Repo(repo_path, init=True)
    points = [(step, 1.0 / (step + 1), step // 10, 1000.0 + step) for step in range(100)]
    points.append((5, 7.0, None, 2000.0))  # a re-logged step: the last one wins
    write_run(repo, "imported1", {"name": "from tb", "experiment": "conv",
                                  "creation_time": 1000.0}, {"lr": 0.1},
              [("loss", {"subset": "train"}, "metric", points), ("acc", None, "metric", [])])
    run = repo.get_run("imported1")
    assert (run.name, run.experiment, run.status, run.creation_time) == (
        "from tb", "conv", "finished", 1000.0)
    loss = run.get_metric("loss", {"subset": "train"})
    assert loss.count == 100 and loss.values[5] == 7.0 and loss.timestamps[0] == 1000.0
    assert repo.query_runs("run.lr == 0.1").hashes() == ["imported1"]
    with pytest.raises(AimCoreError, match="already exists"):
        write_run(repo_path, "imported1", {}, {}, [])
    assert _files(repo_path) == ["imported1.sqlite"]
    resumed = Run("imported1", repo=repo_path)
    resumed.track(0.5, name="loss", context={"subset": "train"})
    resumed.close()
    assert repo.get_run("imported1").get_metric("loss", {"subset": "train"}).count == 101
