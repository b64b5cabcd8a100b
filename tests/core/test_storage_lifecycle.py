"""Lifecycle and resources: runs dropped without close(), file descriptors, threads."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from aim_core import Repo, Run


def _aim_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("aim-core")]


def _fds_under(folder: Path) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(folder)):
            found.append(target)
    return found


def test_a_dropped_run_is_finalised_when_collected(repo_path):
    run = Run(repo=repo_path, flush_interval=3600)
    run["hparams"] = {"lr": 0.1}
    for i in range(100):
        run.track(float(i), name="loss")
    run_hash = run.hash
    del run
    gc.collect()
    stored = Repo(repo_path).get_run(run_hash)
    assert stored.status == "finished" and stored.get_metric("loss").count == 100
    assert sorted(os.listdir(repo_path / ".aim_core" / "runs")) == [f"{run_hash}.sqlite"]
    assert _aim_threads() == []


def test_a_run_in_a_reference_cycle_is_finalised_by_the_collector(repo_path):
    class Trainer:
        def __init__(self):
            self.me, self.run = self, Run(repo=repo_path)

    trainer = Trainer()
    trainer.run.track(1.0, name="x")
    run_hash = trainer.run.hash
    del trainer
    gc.collect()
    assert Repo(repo_path).get_run(run_hash).status == "finished"


def test_after_the_last_run_closes_nothing_of_aim_core_is_left(repo_path):
    repo = Repo(repo_path, init=True)
    runs = [Run(repo=repo) for _ in range(3)]
    for run in runs:
        run.track(1.0, name="x")
    assert sorted(_aim_threads()) == ["aim-core-flusher", "aim-core-system"]  # + the sampler
    run_fds = [p for p in _fds_under(repo_path / ".aim_core" / "runs")]
    assert len(run_fds) <= 3 * 4  # per open run: its file, WAL, shared memory, lock
    for run in runs:
        run.close()
    assert _aim_threads() == []
    assert _fds_under(repo_path / ".aim_core" / "runs") == []
    again = Run(repo=repo, system_tracking_interval=None)  # the flusher starts again on demand
    again.track(2.0, name="x")
    assert _aim_threads() == ["aim-core-flusher"]
    again.close()
    assert _aim_threads() == []


def test_opening_and_closing_an_empty_run_starts_no_thread(repo_path):
    quiet = {"system_tracking_interval": None, "capture_terminal_logs": False}
    Run(repo=repo_path, **quiet).close()
    seen = []
    run = Run(repo=repo_path, **quiet)
    seen.append(_aim_threads())
    run.close()
    assert seen == [[]]


UNCLOSED = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    from aim_core import Run

    class Trainer:  # holds its run in a reference cycle: only the cyclic collector frees it
        def __init__(self, repo):
            self.run = Run(repo=repo, system_tracking_interval=None)  # psutil needs fds too
            self.log = lambda v: self.run.track(v, name="x")

    if sys.argv[2] == "cycle":
        import gc
        gc.disable()  # as if no allocation ever reached the collector's threshold
    for i in range(1000):
        if sys.argv[2] == "cycle":
            trainer = Trainer(sys.argv[1])
            trainer.run["i"] = i
            trainer.log(float(i))
        else:
            run = Run(repo=sys.argv[1])
            run["i"] = i
            run.track(float(i), name="x")
    print("done")
""")


@pytest.mark.parametrize("held", ["plain", "cycle"])
def test_a_thousand_unclosed_runs_work_under_ulimit_256(repo_path, held):
    done = subprocess.run([sys.executable, "-c", UNCLOSED, str(repo_path), held],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "done" and "Traceback" not in done.stderr
    if held == "plain":  # at the limit (cycle), a background write may warn and retry
        assert "Too many open files" not in done.stderr
    runs = list(Repo(repo_path).iter_runs())
    assert len(runs) == 1000
    assert {r.status for r in runs} == {"finished"}
    assert sorted(r["i"] for r in runs) == list(range(1000))
    assert all(r.get_metric("x").count == 1 for r in runs[::97])
    assert all(name.endswith(".sqlite") for name in os.listdir(repo_path / ".aim_core" / "runs"))


NO_FDS = textwrap.dedent("""
    import os, resource, sys
    from aim_core import Run
    from aim_core.errors import RunUnavailableError
    Run(repo=sys.argv[1], system_tracking_interval=None, capture_terminal_logs=False).close()
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    keep = []
    try:
        while True:  # the script itself holds every descriptor
            keep.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    try:
        Run(repo=sys.argv[1], system_tracking_interval=None, capture_terminal_logs=False)
    except RunUnavailableError as exc:
        print("UNAVAILABLE", exc)
""")


def test_no_file_descriptor_left_is_reported_as_such(repo_path):
    done = subprocess.run([sys.executable, "-c", NO_FDS, str(repo_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith("UNAVAILABLE"), done.stdout + done.stderr[-2000:]
    assert "too many open files" in done.stdout and "ulimit -n" in done.stdout
    assert len(Repo(repo_path).list_runs()) == 1  # nothing of the failed run is left


def test_a_lock_file_unlinked_by_its_releaser_is_never_taken(tmp_path, monkeypatch):
    from aim_core.errors import RunLockedError
    from aim_core.storage import lock as lock_module

    path = tmp_path / "r.lock"
    first = lock_module.RunLock(path, "r")
    first.acquire()
    stale = os.open(path, os.O_RDWR)  # a second writer opened the file just now...
    first.release()  # ...and its holder unlinked it while still holding it
    assert not path.exists()
    third = lock_module.RunLock(path, "r")
    third.acquire()  # a third one made a new lock file and holds it
    opens, real_open = [], os.open

    def open_stale_first(*args, **kwargs):
        opens.append(args[0])
        return stale if len(opens) == 1 else real_open(*args, **kwargs)

    monkeypatch.setattr(lock_module.os, "open", open_stale_first)
    second = lock_module.RunLock(path, "r")
    with pytest.raises(RunLockedError):  # the orphaned file it opened does not count
        second.acquire()
    assert len(opens) == 2
    monkeypatch.undo()
    third.release()
    assert not path.exists()


FORKER = textwrap.dedent("""
    import os, sys
    from aim_core import Repo, Run
    run = Run(repo=sys.argv[1])
    for i in range(100):
        run.track(float(i), name="x")
    run.flush()
    pid = os.fork()
    if pid == 0:  # a child that ends normally (its exit hooks run) must not touch the run
        sys.exit(0)
    os.waitpid(pid, 0)
    for i in range(100, 200):
        run.track(float(i), name="x")
    run.close()
    print(Repo(sys.argv[1]).get_run(run.hash).get_metric("x").count)
""")


def test_a_forked_child_leaves_its_parents_run_alone(repo_path):
    done = subprocess.run([sys.executable, "-c", FORKER, str(repo_path)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "200"
    assert [n for n in os.listdir(repo_path / ".aim_core" / "runs")
            if not n.endswith(".sqlite")] == []
