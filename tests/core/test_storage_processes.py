"""Crashes, signals, locks and concurrency, with real subprocesses on real files."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from aim_core import Repo, Run
from aim_core.errors import RunLockedError

WRITER = textwrap.dedent("""
    import json, sys, time
    from aim_core import Run
    repo, interval, count = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    run = Run(repo=repo, flush_interval=interval)
    run["hparams"] = {"worker": sys.argv[4]}
    print(json.dumps({"hash": run.hash}), flush=True)
    start = time.time()
    for i in range(count if count else 10**12):
        run.track(float(i), name="loss", step=i, context={"subset": "train"})
        print(json.dumps({"step": i, "t": time.time()}), flush=True)
        time.sleep(0.002)
    run.close()
    print(json.dumps({"done": True}), flush=True)
""")


def _start_writer(repo, interval=0.2, count=0, tag="w"):
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(repo), str(interval), str(count), tag],
        stdout=subprocess.PIPE, text=True)
    run_hash = json.loads(proc.stdout.readline())["hash"]
    return proc, run_hash


def _read_until(proc, seconds):
    """Read the writer's progress lines for ``seconds``; return (step, time) pairs."""
    seen, deadline = [], time.time() + seconds
    while time.time() < deadline:
        line = json.loads(proc.stdout.readline())
        seen.append((line["step"], line["t"]))
    return seen


def test_kill_9_leaves_a_readable_crashed_run_with_flushed_points(repo_path):
    proc, run_hash = _start_writer(repo_path, interval=0.2)
    seen = _read_until(proc, 1.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = time.time()
    must_have = [step for step, t in seen if t < killed_at - 0.2 - 0.5]
    assert must_have, "the writer made too little progress"
    repo = Repo(repo_path)
    run = repo.get_run(run_hash)
    assert run.status == "crashed" and run["hparams"] == {"worker": "w"}
    steps = run.get_metric("loss", {"subset": "train"}).steps.tolist()
    assert steps[: len(must_have)] == must_have
    assert [r.status for r in repo.iter_runs()] == ["crashed"]
    resumed = Run(run_hash, repo=repo_path)  # the dead holder's lock is gone
    resumed.track(1.0, name="loss", context={"subset": "train"})
    resumed.close()
    assert repo.get_run(run_hash).status == "finished"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_sigterm_and_ctrl_c_lose_nothing_and_mark_failed(repo_path, signum):
    proc, run_hash = _start_writer(repo_path, interval=30.0)  # nothing flushes on its own
    seen = _read_until(proc, 0.7)
    proc.send_signal(signum)
    tail = proc.stdout.read()
    proc.wait(timeout=20)
    last = max([step for step, _ in seen] +
               [json.loads(line)["step"] for line in tail.splitlines() if "step" in line])
    run = Repo(repo_path).get_run(run_hash)
    assert run.get_metric("loss", {"subset": "train"}).steps.tolist() == list(range(last + 1))
    assert run.status == "failed"


def test_second_process_gets_run_locked_error_naming_holder(repo_path):
    proc, run_hash = _start_writer(repo_path)
    try:
        code = ("import sys\nfrom aim_core import Run\nfrom aim_core.errors import "
                "RunLockedError\ntry:\n    Run(sys.argv[1], repo=sys.argv[2])\n"
                "except RunLockedError as e:\n    print('LOCKED', e.pid, e.host)\n")
        out = subprocess.run([sys.executable, "-c", code, run_hash, str(repo_path)],
                             capture_output=True, text=True, timeout=60).stdout
        assert out.split()[:2] == ["LOCKED", str(proc.pid)]
        with pytest.raises(RunLockedError, match=f"pid {proc.pid}"):
            Run(run_hash, repo=repo_path)
        assert Repo(repo_path).get_run(run_hash).status == "running"
    finally:
        proc.kill()
        proc.wait()


READER = textwrap.dedent("""
    import sys, time
    from aim_core import Repo
    repo, seconds = sys.argv[1], float(sys.argv[2])
    deadline, reads = time.time() + seconds, 0
    while time.time() < deadline:
        for run in Repo(repo).iter_runs():
            metric = run.get_metric("loss", {"subset": "train"})
            if metric is not None:
                assert (metric.steps == range(len(metric.steps))).all()
            reads += 1
    print("READS", reads)
""")


def test_four_writers_and_a_reader_see_no_error_and_lose_nothing(repo_path):
    Repo(repo_path, init=True)
    count = 1500  # about 3 s each at 2 ms per point
    writers = [_start_writer(repo_path, interval=0.05, count=count, tag=str(i))
               for i in range(4)]
    reader = subprocess.run([sys.executable, "-c", READER, str(repo_path), "3"],
                            capture_output=True, text=True, timeout=120)
    outputs = [proc.communicate(timeout=120) for proc, _ in writers]
    assert reader.returncode == 0, reader.stderr
    assert int(reader.stdout.split()[1]) > 0
    for (proc, _), (out, err) in zip(writers, outputs, strict=True):
        assert proc.returncode == 0 and not err, err
        assert '"done": true' in out
    repo = Repo(repo_path)
    runs = list(repo.iter_runs())
    assert sorted(r["hparams", "worker"] for r in runs) == ["0", "1", "2", "3"]
    for run in runs:
        assert run.status == "finished"
        assert run.get_metric("loss", {"subset": "train"}).steps.tolist() == list(range(count))


def test_exit_without_close_flushes_and_finishes(repo_path):
    code = ("import sys\nfrom aim_core import Run\nrun = Run(repo=sys.argv[1], "
            "flush_interval=3600)\nfor i in range(1000):\n    run.track(float(i), name='x')\n"
            "print(run.hash)\n")
    out = subprocess.run([sys.executable, "-c", code, str(repo_path)], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    run = Repo(repo_path).get_run(out.strip())
    assert run.status == "finished" and run.get_metric("x").count == 1000


SWEEP = textwrap.dedent("""
    import json, sys, time
    from aim_core import Run
    repo = sys.argv[1]
    for i in range(50):
        run = Run(repo=repo, flush_interval=0.2)
        run["hparams"] = {"i": i}
        print(json.dumps({"open": run.hash}), flush=True)
        for step in range(60):
            run.track(float(step), name="loss", step=step)
            print(json.dumps({"step": step, "t": time.time()}), flush=True)
            time.sleep(0.001)
        run.close()
        print(json.dumps({"closed": run.hash}), flush=True)
""")


def test_kill_9_during_a_sweep_keeps_closed_runs_and_marks_the_open_one_crashed(repo_path):
    proc = subprocess.Popen([sys.executable, "-c", SWEEP, str(repo_path)],
                            stdout=subprocess.PIPE, text=True)
    events, deadline = [], time.time() + 1.5
    while time.time() < deadline:
        events.append(json.loads(proc.stdout.readline()))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = time.time()
    for line in proc.stdout:  # what the sweep printed between the deadline and the kill
        with contextlib.suppress(ValueError):  # a line cut by the kill
            events.append(json.loads(line))
    closed = [e["closed"] for e in events if "closed" in e]
    assert len(closed) >= 3, "the sweep made too little progress"
    repo = Repo(repo_path)
    status = {run.hash: run.status for run in repo.iter_runs()}
    names = os.listdir(repo_path / ".aim_core" / "runs")
    for run_hash in closed:
        run = repo.get_run(run_hash)
        assert status[run_hash] == "finished"
        assert run.get_metric("loss").steps.tolist() == list(range(60))
        assert [n for n in names if n.startswith(run_hash)] == [f"{run_hash}.sqlite"]
    opened = [e["open"] for e in events if "open" in e]
    if opened[-1] not in closed:  # killed while a run was open
        last_run = opened[-1]
        assert status[last_run] == "crashed"
        tracked = [e for e in events[events.index({"open": last_run}):] if "step" in e]
        must_have = [e["step"] for e in tracked if e["t"] < killed_at - 0.2 - 0.5]
        stored = repo.get_run(last_run).get_metric("loss")
        stored_steps = [] if stored is None else stored.steps.tolist()
        assert stored_steps[: len(must_have)] == must_have
    unseen = set(status) - set(opened)  # created, killed before it printed its hash
    assert len(unseen) <= 1
    for run_hash in unseen:
        assert status[run_hash] == "crashed"
        assert repo.get_run(run_hash).get_metric("loss") is None
    assert all(name.endswith((".sqlite", ".sqlite-wal", ".sqlite-shm", ".lock"))
               for name in os.listdir(repo_path / ".aim_core" / "runs"))


CLOSER = textwrap.dedent("""
    import os, sys, threading, time
    from aim_core import Run
    signum = int(sys.argv[2])
    run = Run(repo=sys.argv[1], flush_interval=3600)
    for i in range(1_000_000):
        run.track(float(i), name="x", step=i)
    print(run.hash, flush=True)
    # the signal comes from inside, a few ms into close() (which takes far longer)
    threading.Timer(0.005, os.kill, (os.getpid(), signum)).start()
    run.close()
    print("closed", flush=True)
    time.sleep(30)
""")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_a_signal_during_close_of_a_million_points_loses_nothing(repo_path, signum):
    proc = subprocess.Popen([sys.executable, "-c", CLOSER, str(repo_path), str(int(signum))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_hash = proc.stdout.readline().strip()
    rest, err = proc.communicate(timeout=120)
    # The signal still ends the process; held back while close() writes. Should a loaded
    # machine delay the timer past close(), it ends the sleep instead: the checks still hold.
    assert proc.returncode != 0
    if signum == signal.SIGINT:
        assert "KeyboardInterrupt" in err  # raised once the data was down
    run = Repo(repo_path).get_run(run_hash)
    metric = run.get_metric("x")
    assert metric.count == 1_000_000 and metric.values[-1] == 999_999.0
    assert run.status in ("finished", "failed")


GRACEFUL = textwrap.dedent("""
    import os, signal, sys, threading, time, warnings
    from aim_core import Run
    stop = False
    def on_term(sig, frame):
        global stop
        stop = True
    signal.signal(signal.SIGTERM, on_term)  # the script's own graceful handler, installed first
    run = Run(repo=sys.argv[1], system_tracking_interval=None, capture_terminal_logs=False)
    threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
    step = 0
    while not stop:
        run.track(float(step), name="loss", step=step)
        step += 1
        time.sleep(0.005)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run.track(1.0, name="preempted")
        run["last_step"] = step
    print(run.hash, step, len(caught), flush=True)
    run.close()
""")


def test_a_scripts_own_sigterm_handler_keeps_its_runs_open(repo_path):
    out = subprocess.run([sys.executable, "-c", GRACEFUL, str(repo_path)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    run_hash, steps, warned = out.stdout.split()
    run = Repo(repo_path).get_run(run_hash)
    assert run.status == "finished" and run.get("last_step") == int(steps)
    assert run.get_metric("preempted").values.tolist() == [1.0]
    assert run.get_metric("loss").count == int(steps) and warned == "0"


AFTER_CLOSE = textwrap.dedent("""
    import sys, warnings
    from aim_core import Run
    from aim_core.storage import flusher
    run = Run(repo=sys.argv[1], system_tracking_interval=None, capture_terminal_logs=False)
    run.track(1.0, name="loss")
    flusher.close_all("failed")  # what the exit paths do (SIGTERM with no handler of the script)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run.track(2.0, name="loss")
        run.track(3.0, name="other")
        run["late"] = 1
    print(run.hash, len(caught), caught[0].message if caught else "", flush=True)
""")


def test_tracking_into_a_run_closed_by_an_exit_path_warns_once(repo_path):
    out = subprocess.run([sys.executable, "-c", AFTER_CLOSE, str(repo_path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    run_hash, warned, message = out.stdout.split(maxsplit=2)
    assert warned == "1" and "closed" in message and "not stored" in message
    run = Repo(repo_path).get_run(run_hash)
    assert run.status == "failed" and run.get_metric("loss").values.tolist() == [1.0]


CRASHER = textwrap.dedent("""
    import os, sys, time
    from aim_core import Run
    run = Run(repo=sys.argv[1], system_tracking_interval=None, capture_terminal_logs=False,
              flush_interval=0.05)
    run.track(1.0, name="x")
    run.flush()
    print(run.hash, flush=True)
    os.kill(os.getpid(), 9)
""")


def test_editing_a_crashed_run_keeps_it_crashed_until_runs_close(repo_path):
    from starlette.testclient import TestClient

    from aim_core.ui.app import create_app

    out = subprocess.run([sys.executable, "-c", CRASHER, str(repo_path)], capture_output=True,
                         text=True, timeout=60)
    run_hash = out.stdout.strip()
    repo = Repo(repo_path)

    def check() -> None:
        run = repo.get_run(run_hash)
        assert (run.status, run.end_time) == ("crashed", None)
        assert run.get_metric("x").values.tolist() == [1.0]

    check()
    repo.get_run(run_hash).name = "renamed"
    check()
    next(repo.iter_runs()).add_tag("preempted")
    check()
    repo.get_run(run_hash).archived = True
    check()
    cli = [str(Path(sys.executable).parent / "aim-core"), "runs"]
    for action in ("unarchive", "archive"):
        done = subprocess.run([*cli, action, run_hash, "--repo", str(repo_path)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        check()
    with TestClient(create_app(repo_path, allow_writes=True), base_url="http://127.0.0.1") as ui:
        answer = ui.post(f"/api/runs/{run_hash}/unarchive", headers={"X-Aim-Core-Write": "1"})
        assert answer.status_code == 200
    check()
    run = repo.get_run(run_hash)
    assert (run.name, run.tags, run.archived) == ("renamed", ["preempted"], False)
    done = subprocess.run([*cli, "close", run_hash, "--repo", str(repo_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    run = repo.get_run(run_hash)
    assert run.status == "finished" and run.end_time is not None  # the explicit way to end it
