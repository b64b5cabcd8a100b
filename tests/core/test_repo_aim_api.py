"""``Repo`` as Aim's SDK uses it: lookups that return None, counts, and finding the repo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aim_core import Repo, Run
from aim_core.errors import RepoError, RepoNotFoundError

AIM_CORE = Path(sys.executable).parent / "aim-core"


def _runs(path, n):
    hashes = []
    for i in range(n):
        with Run(repo=str(path)) as run:
            run.track(float(i), name="loss")
        hashes.append(run.hash)
    return hashes


def test_lookups_and_counts(repo_path):
    hashes = _runs(repo_path, 3)
    repo = Repo.from_path(str(repo_path))
    assert repo.get_run("0123456789abcdef") is None and repo.get_run("no/such") is None
    assert repo.get_run(hashes[0]).hash == hashes[0]
    assert sorted(repo.list_all_runs()) == sorted(hashes) and repo.total_runs_count() == 3
    assert repo.delete_run("0123456789abcdef") is False  # as in Aim: no error
    assert repo.delete_run(hashes[0]) is True
    repo.delete_runs(hashes[1:])
    assert repo.total_runs_count() == 0 and repo.list_all_runs() == []


def test_read_only_repo_reads_but_refuses_deletions(repo_path, tmp_path_factory):
    (run_hash,) = _runs(repo_path, 1)
    repo = Repo(str(repo_path), read_only=True, init=False)
    assert repo.get_run(run_hash).get_metric("loss").values.tolist() == [0.0]
    with pytest.raises(RepoError, match="read_only=True"):
        repo.delete_run(run_hash)
    elsewhere = tmp_path_factory.mktemp("other")
    with pytest.raises(RepoError, match="read_only=True"):
        Repo(str(repo_path)).copy_runs([run_hash], Repo(str(elsewhere), read_only=True, init=True))
    assert Repo(str(repo_path)).list_all_runs() == [run_hash]


def test_exists_and_default_repo_path(repo_path, monkeypatch):
    assert not Repo.exists(repo_path)
    Repo(repo_path, init=True)
    assert Repo.exists(repo_path) and Repo.exists(str(repo_path / ".aim_core"))
    sub = repo_path / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert Repo.default_repo_path() == str(repo_path)  # the nearest repo above, as Run() uses
    assert Repo.default_repo().path == repo_path.resolve()
    monkeypatch.setenv("AIM_CORE_REPO", str(sub))
    assert Repo.default_repo_path() == str(sub)


def test_one_rule_for_the_default_repo_and_an_error_naming_the_repo_above(repo_path, monkeypatch):
    Repo(repo_path, init=True)
    sub = repo_path / "experiments" / "today"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    with Run() as run:  # no repo given: the nearest repo above the working directory
        run.track(1.0, name="x")
    assert Repo().list_all_runs() == [run.hash] and Repo(repo_path).list_all_runs() == [run.hash]
    with pytest.raises(RepoNotFoundError) as caught:
        Repo(".")  # an explicit path is that path, as in Aim ...
    message = str(caught.value)
    assert str(sub) in message and f"nearest repo above it is {repo_path}" in message
    assert not (sub / ".aim_core").exists()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("AIM_CORE_REPO", None)
    listed = subprocess.run([str(AIM_CORE), "runs", "ls", "--format", "json"], cwd=sub, env=env,
                            capture_output=True, text=True, check=True, timeout=60)
    assert run.hash in listed.stdout  # ... and the CLI finds the same repo as Run()
