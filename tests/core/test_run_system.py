"""Run(system_tracking_interval=..., log_system_params=..., capture_terminal_logs=...): what a
run records about its machine and its process, with real threads, files and processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from aim_core import Repo, Run
from aim_core.system.gpu import GpuReader

CPU_SET = {"__system__cpu", "__system__memory_percent", "__system__p_memory_percent",
           "__system__disk_percent"}


def _system(run):
    return {m.name: m for m in run.metrics() if m.name.startswith("__system__")}


def test_samples_appear_at_the_interval(repo_path):
    run = Run(repo=repo_path, system_tracking_interval=0.2, capture_terminal_logs=False)
    run.track(1.0, name="loss")
    time.sleep(2.1)
    run.close()
    stored = Repo(repo_path).get_run(run.hash)
    metrics = _system(stored)
    assert set(metrics) >= CPU_SET
    if not GpuReader().available:
        assert set(metrics) == CPU_SET  # a machine without NVIDIA GPU: the CPU set, no error
    cpu = metrics["__system__cpu"]
    assert 5 <= len(cpu.steps) <= 12  # about 11; fewer on a very busy machine
    assert cpu.steps.tolist() == list(range(len(cpu.steps)))  # steps are sample numbers
    assert 0.15 < float(np.median(np.diff(cpu.timestamps))) < 0.5
    assert 0 <= cpu.timestamps[0] - stored.creation_time < 1.5  # the first one at start
    assert stored.get_metric("loss").values.tolist() == [1.0]
    info = Repo(repo_path).collect_sequence_info()
    assert info["metric"]["__system__cpu"] == [{}]


def test_none_records_nothing_and_starts_no_sampler(repo_path):
    run = Run(repo=repo_path, system_tracking_interval=None, capture_terminal_logs=False)
    run.track(1.0, name="loss")
    assert "aim-core-system" not in [t.name for t in threading.enumerate()]
    time.sleep(0.3)
    run.close()
    stored = Repo(repo_path).get_run(run.hash)
    assert [m.name for m in stored.metrics()] == ["loss"]
    assert stored.get_terminal_logs() is None


def test_default_interval_samples_once_at_start(repo_path):
    with Run(repo=repo_path, capture_terminal_logs=False) as run:  # Aim's default: every 10 s
        pass
    metrics = _system(Repo(repo_path).get_run(run.hash))
    assert set(metrics) >= CPU_SET
    assert {len(m.steps) for m in metrics.values()} == {1}


def test_a_bad_interval_warns_and_the_run_still_works(repo_path):
    with pytest.warns(RuntimeWarning, match="system_tracking_interval"):
        run = Run(repo=repo_path, system_tracking_interval=0, capture_terminal_logs=False)
    run.track(2.0, name="loss")
    run.close()
    assert [m.name for m in Repo(repo_path).get_run(run.hash).metrics()] == ["loss"]


def test_two_handles_of_one_run_share_one_sampler(repo_path):
    first = Run(repo=repo_path, system_tracking_interval=60, capture_terminal_logs=False)
    second = Run(first.hash, repo=repo_path, system_tracking_interval=60)
    second.close()
    first.close()
    metrics = _system(Repo(repo_path).get_run(first.hash))
    assert {len(m.steps) for m in metrics.values()} == {1}


def test_reopening_to_edit_props_keeps_how_the_run_ended(repo_path):
    with Run(repo=repo_path, capture_terminal_logs=False) as run:
        run.track(1.0, name="x")
    ended = Repo(repo_path).get_run(run.hash).end_time
    again = Run(run.hash, repo=repo_path)  # samples once more: not a new use of the run
    again.add_tag("best")
    again.close()
    after = Repo(repo_path).get_run(run.hash)
    assert (after.tags, after.end_time) == (["best"], ended)


SECRETS = {"MY_API_KEY": "s3cr3t-1", "HF_TOKEN": "s3cr3t-2", "DB_PASSWORD": "s3cr3t-3",
           "AWS_SECRET_ACCESS_KEY": "s3cr3t-4", "GOOGLE_APPLICATION_CREDENTIALS": "s3cr3t-5"}


def test_system_params_leave_secrets_out_and_stay_out_of_the_catalog(repo_path, monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TRAIN_SEED", "7")
    with Run(repo=repo_path, log_system_params=True, system_tracking_interval=None,
             capture_terminal_logs=False) as run:
        run["hparams"] = {"lr": 0.1}
    repo = Repo(repo_path)
    stored = repo.get_run(run.hash)
    params = stored["__system_params"]
    assert set(params) == {"packages", "env_variables", "git_info", "executable", "arguments"}
    assert params["env_variables"]["TRAIN_SEED"] == "7"
    assert params["packages"]["numpy"] == np.__version__
    assert params["executable"] == sys.executable
    raw = (repo_path / ".aim_core" / "runs" / f"{run.hash}.sqlite").read_bytes()
    for value in SECRETS.values():
        assert value.encode() not in raw
    assert "s3cr3t" not in json.dumps(stored.params)
    entry = repo.catalog.get(run.hash)  # ~10 KB a run would weigh on every query
    assert "__system_params" not in entry["params"] and entry["params"]["hparams"] == {"lr": 0.1}
    (listed,) = [r for r in repo.iter_runs() if r.hash == run.hash]
    assert listed["__system_params"]["env_variables"]["TRAIN_SEED"] == "7"  # from the file
    assert repo.collect_params_info() == {"hparams": {"lr": 0.1}}


def test_system_params_survive_a_reindex(repo_path):
    from aim_core.cli import main as cli_main

    with Run(repo=repo_path, log_system_params=True, system_tracking_interval=None,
             capture_terminal_logs=False) as run:
        pass
    assert cli_main(["reindex", "--repo", str(repo_path)]) == 0
    repo = Repo(repo_path)
    assert "__system_params" not in repo.catalog.get(run.hash)["params"]
    (listed,) = list(repo.iter_runs())
    assert "packages" in listed["__system_params"]


def test_editing_runs_from_the_cli_records_nothing_of_the_cli(repo_path):
    from aim_core.cli import main as cli_main

    with Run(repo=repo_path, system_tracking_interval=None, capture_terminal_logs=False) as run:
        run.track(1.0, name="loss")
    assert cli_main(["runs", "archive", run.hash, "--repo", str(repo_path)]) == 0
    stored = Repo(repo_path).get_run(run.hash)
    assert stored.archived
    assert [m.name for m in stored.metrics()] == ["loss"]


def _lines(run):
    logs = run.get_terminal_logs()
    return [] if logs is None else [(step, value.data) for step, (value, _, _) in logs.data.items()]


CHILD = textwrap.dedent("""
    import sys, time
    from aim_core import Run
    run = Run(repo=sys.argv[1], system_tracking_interval=None,
              capture_terminal_logs=sys.argv[2] == "capture")
    print("epoch 1 starts", flush=True)
    for i in range(0, 101, 25):
        sys.stderr.write(f"\\rtraining {i:3d}%")
        sys.stderr.flush()
        time.sleep(0.01)
    sys.stderr.write("\\n")
    print("warning: lr is high", file=sys.stderr)
    print("loss=0.25")
    sys.stdout.write("no newline at the end")
    run.close()
    print(run.hash, file=sys.stderr)
""")


def _child(repo_path, mode):
    done = subprocess.run([sys.executable, "-c", CHILD, str(repo_path), mode],
                          capture_output=True, timeout=120, check=True)
    *console_err, run_hash = done.stderr.decode().rstrip("\n").split("\n")
    return done.stdout, "\n".join(console_err).encode(), run_hash


def test_a_subprocess_has_its_lines_in_logs_in_order_and_its_console_unchanged(repo_path):
    out_plain, err_plain, plain_hash = _child(repo_path, "plain")
    out, err, run_hash = _child(repo_path, "capture")
    assert (out, err) == (out_plain, err_plain)  # the console saw exactly the same
    assert err.startswith(b"\rtraining   0%\rtraining  25%")
    repo = Repo(repo_path)
    assert _lines(repo.get_run(plain_hash)) == []
    assert _lines(repo.get_run(run_hash)) == [
        (0, "epoch 1 starts"), (1, "training 100%"), (2, "warning: lr is high"),
        (3, "loss=0.25"), (4, "no newline at the end")]


KILLED = textwrap.dedent("""
    import sys, time
    from aim_core import Run
    run = Run(repo=sys.argv[1], flush_interval=0.2, system_tracking_interval=None)
    sys.stderr.write(run.hash + "\\n")
    sys.stderr.flush()
    i = 0
    while True:
        print(f"line {i} {time.time():.3f}", flush=True)
        i += 1
        time.sleep(0.005)
""")


def test_kill_9_loses_at_most_one_flush_interval_of_logs(repo_path):
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(repo_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_hash = proc.stderr.readline().strip()
    printed, deadline = [], time.time() + 1.5
    while time.time() < deadline:
        _, i, t = proc.stdout.readline().split()
        printed.append((int(i), float(t)))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = time.time()
    proc.stdout.close()
    proc.stderr.close()
    must_have = [i for i, t in printed if t < killed_at - 0.2 - 0.5]  # interval + slack
    assert must_have, "the child made too little progress"
    stored = Repo(repo_path).get_run(run_hash)
    assert stored.status == "crashed"
    lines = _lines(stored)
    assert [step for step, _ in lines] == list(range(len(lines)))
    assert lines[0] == (0, run_hash)  # what it wrote to stderr first
    numbers = [int(text.split()[1]) for _, text in lines[1:]]
    assert numbers[: len(must_have)] == must_have


def test_two_runs_in_one_process_each_get_every_line_once(repo_path, capsys):
    before = dict(vars(sys.stdout)), dict(vars(sys.stderr))
    first = Run(repo=repo_path, system_tracking_interval=None)
    print("one")
    second = Run(repo=repo_path, system_tracking_interval=None)
    again = Run(first.hash, repo=repo_path)  # a second handle of the first run
    print("two")
    print("three", file=sys.stderr)
    again.close()
    first.close()
    print("four")
    second.close()
    print("after")
    assert (dict(vars(sys.stdout)), dict(vars(sys.stderr))) == before  # restored exactly
    assert capsys.readouterr().out == "one\ntwo\nfour\nafter\n"
    repo = Repo(repo_path)
    assert _lines(repo.get_run(first.hash)) == [(0, "one"), (1, "two"), (2, "three")]
    assert _lines(repo.get_run(second.hash)) == [(0, "two"), (1, "three"), (2, "four")]


def test_a_resumed_run_continues_its_line_numbers(repo_path, capsys):
    with Run(repo=repo_path, system_tracking_interval=None) as run:
        print("first session")
    with Run(run.hash, repo=repo_path, system_tracking_interval=None):
        print("second session")
    assert _lines(Repo(repo_path).get_run(run.hash)) == [(0, "first session"),
                                                         (1, "second session")]


def test_a_live_run_reads_its_own_lines(repo_path, capsys):
    run = Run(repo=repo_path, system_tracking_interval=None, flush_interval=0.05)
    print("visible while running")
    deadline = time.time() + 10
    while not _lines(run) and time.time() < deadline:
        time.sleep(0.02)
    assert _lines(run) == [(0, "visible while running")]
    run.close()


class _ReadOnlyProxy:
    """A stream proxy that takes no attributes (as some notebook and web frameworks' do)."""

    def __init__(self, stream):
        object.__setattr__(self, "_stream", stream)

    def __getattr__(self, name):
        return getattr(self._stream, name)

    def __setattr__(self, name, value):
        raise RuntimeError("read-only proxy")


class _StickyStream:
    """A stream that takes our wrapper but refuses to give it back."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        return self._stream.write(text)

    def flush(self):
        self._stream.flush()

    def __delattr__(self, name):
        raise RuntimeError("cannot delete attributes")


def test_a_stream_that_refuses_our_wrapper_leaves_the_run_working(repo_path, capsys,
                                                                  monkeypatch):
    monkeypatch.setattr(sys, "stdout", _ReadOnlyProxy(sys.stdout))
    with Run(repo=repo_path, system_tracking_interval=None) as run:
        print("shown")
        print("to stderr", file=sys.stderr)
        run.track(1.0, name="loss")
    assert capsys.readouterr() == ("shown\n", "to stderr\n")
    stored = Repo(repo_path).get_run(run.hash)
    assert stored.status == "finished"
    assert _lines(stored) == [(0, "to stderr")]


def test_a_stream_that_refuses_to_be_restored_still_closes_the_run(repo_path, capsys,
                                                                  monkeypatch):
    monkeypatch.setattr(sys, "stdout", _StickyStream(sys.stdout))
    run = Run(repo=repo_path, system_tracking_interval=None)
    print("during")
    run.close()
    print("after")  # our wrapper stays on the stream, passing writes through
    assert capsys.readouterr().out == "during\nafter\n"
    stored = Repo(repo_path).get_run(run.hash)
    assert stored.status == "finished"
    assert _lines(stored) == [(0, "during")]


STRICT = textwrap.dedent("""
    import sys
    from aim_core import Run
    run = Run(repo=sys.argv[1], system_tracking_interval=None, flush_interval=60)
    run.track(1.0, name="logs")  # the script's own metric "logs": lines cannot go there
    run.track(2.0, name="loss")
    print("a line")
    run.close()
    sys.stderr.write(run.hash)
""")


def test_warnings_as_errors_never_break_close(repo_path):
    done = subprocess.run([sys.executable, "-W", "error", "-c", STRICT, str(repo_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    stored = Repo(repo_path).get_run(done.stderr)
    assert stored.status == "finished"
    assert stored.get_metric("loss").values.tolist() == [2.0]
    assert stored.get_metric("logs").values.tolist() == [1.0]


CYCLES = textwrap.dedent("""
    import gc, sys
    from aim_core import Run

    class Trainer:  # holds its run and a closure over itself: freed only by the collector
        def __init__(self, repo):
            self.run = Run(repo=repo, system_tracking_interval=0.1, flush_interval=5)
            self.log = lambda v: self.run.track(v, name="loss")

    gc.set_threshold(1)  # collections (and the finalizers of dropped runs) at any allocation
    for i in range(100):
        trainer = Trainer(sys.argv[1])
        trainer.log(float(i))
""")


def test_runs_dropped_in_reference_cycles_are_closed_without_a_deadlock(repo_path):
    done = subprocess.run([sys.executable, "-c", CYCLES, str(repo_path)], capture_output=True,
                          text=True, timeout=120)  # a deadlock: the process never ends
    assert done.returncode == 0, done.stderr
    runs = list(Repo(repo_path).iter_runs())
    assert len(runs) == 100 and {run.status for run in runs} == {"finished"}
