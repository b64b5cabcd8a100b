"""Repo: discovery, listing, status, delete/copy/move and summaries, on real files."""

from __future__ import annotations

import pytest

from aim_core import Repo, Run
from aim_core.errors import RepoError, RepoNotFoundError, RunLockedError


def _run(repo, name, lr, loss):
    with Run(repo=repo, experiment="e", system_tracking_interval=None) as run:
        run.name = name
        run["hparams"] = {"lr": lr, "opt": {"name": "adam"}}
        run.track(loss, name="loss", context={"subset": "train"})
    return run.hash


def test_default_repo_walks_up_and_env_overrides(repo_path, monkeypatch):
    Repo(repo_path, init=True)
    deep = repo_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert Repo.default_repo().path == repo_path.resolve()
    with Run() as run:
        run.track(1.0, name="x")
    assert (repo_path / ".aim_core" / "runs" / f"{run.hash}.sqlite").exists()
    other = repo_path / "other"
    monkeypatch.setenv("AIM_CORE_REPO", str(other))
    assert Repo.default_repo().path == other.resolve()


def test_repo_path_errors(repo_path):
    afile = repo_path / "file.txt"
    afile.write_text("x")
    with pytest.raises(RepoError, match="is a file"):
        Repo(afile)
    with pytest.raises(RepoError, match="is a file"):
        Run(repo=afile)
    with pytest.raises(RepoNotFoundError, match="aim-core init"):
        Repo(repo_path / "missing")
    assert Repo.from_path(repo_path / "new", init=True).path == (repo_path / "new").resolve()
    assert Repo(repo_path / "new" / ".aim_core").path == (repo_path / "new").resolve()


def test_iter_runs_and_summaries(repo_path):
    a = _run(repo_path, "a", 0.1, 1.0)
    b = _run(repo_path, "b", 0.2, 2.0)
    with Run(repo=repo_path, system_tracking_interval=None) as run:
        run["extra"] = {"seed": 1}
        run.track(1.0, name="acc", context={"subset": "val"})
    repo = Repo(repo_path)
    runs = {r.hash: r for r in repo.iter_runs()}
    assert set(runs) == {a, b, run.hash}
    assert runs[a].name == "a" and runs[b]["hparams", "lr"] == 0.2
    assert runs[b].get_metric("loss", {"subset": "train"}).values.tolist() == [2.0]
    assert repo.collect_params_info() == {"hparams": {"lr": 0.2, "opt": {"name": "adam"}},
                                          "extra": {"seed": 1}}
    assert repo.collect_sequence_info() == {
        "metric": {"loss": [{"subset": "train"}], "acc": [{"subset": "val"}]}}


def test_delete_copy_move(repo_path):
    a = _run(repo_path, "a", 0.1, 1.0)
    b = _run(repo_path, "b", 0.2, 2.0)
    c = _run(repo_path, "c", 0.3, 3.0)
    live = Run(repo=repo_path)
    repo = Repo(repo_path)
    dest = repo_path / "dest"
    assert repo.copy_runs([a, "nosuchrun"], dest) == (False, ["nosuchrun"])
    copied = Repo(dest).get_run(a)
    assert copied.name == "a" and copied.get_metric("loss", {"subset": "train"}).last == 1.0
    assert repo.get_run(a).name == "a"  # the source stays
    assert repo.move_runs([b, live.hash], Repo(dest)) == (False, [live.hash])
    assert {r.hash for r in Repo(dest).iter_runs()} == {a, b}
    assert repo.get_run(b) is None
    assert repo.delete_run(c) is True
    with pytest.raises(RunLockedError):
        repo.delete_run(live.hash)
    assert repo.delete_run(c) is False  # nothing left to delete: no error, as in Aim
    assert repo.delete_runs([a, "zzz"]) == (False, ["zzz"])
    assert [r.hash for r in repo.iter_runs()] == [live.hash]
    assert not list((repo_path / ".aim_core" / "runs").glob(f"{c}*"))
    live.close()


def test_truncated_run_file_is_corrupted_and_others_still_list(repo_path):
    good = _run(repo_path, "good", 0.1, 1.0)
    with Run(repo=repo_path) as run:
        for i in range(20_000):
            run.track(float(i), name="big")
    bad = run.hash
    path = repo_path / ".aim_core" / "runs" / f"{bad}.sqlite"
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 3)
    repo = Repo(repo_path)
    statuses = {r.hash: r.status for r in repo.iter_runs()}
    assert statuses == {good: "finished", bad: "corrupted"}
    from aim_core.errors import RunCorruptedError

    with pytest.raises(RunCorruptedError, match="damaged"):
        _ = repo.get_run(bad).get_metric("big").values
    assert repo.get_run(good).get_metric("loss", {"subset": "train"}).values.tolist() == [1.0]


def test_garbage_run_file_raises_corrupted(repo_path):
    from aim_core.errors import RunCorruptedError

    with Run(repo=repo_path) as run:
        run.track(1.0, name="x")
    (repo_path / ".aim_core" / "runs" / f"{run.hash}.sqlite").write_bytes(b"not a db" * 100)
    with pytest.raises(RunCorruptedError):
        Repo(repo_path).get_run(run.hash)
    assert Repo(repo_path).status_of(run.hash, None) == "corrupted"
