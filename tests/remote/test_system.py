"""A remote run records its process as a local one does: system metrics, system params and
terminal output, sampled and captured on the client, stored by the server."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

from aim_core import Repo

CPU_SET = {"__system__cpu", "__system__memory_percent", "__system__p_memory_percent",
           "__system__disk_percent"}

CLIENT = textwrap.dedent("""
    import sys, time
    from aim_core import Run
    interval = None if sys.argv[2] == "none" else float(sys.argv[2])
    on = interval is not None
    run = Run(repo=sys.argv[1], system_tracking_interval=interval, log_system_params=on,
              capture_terminal_logs=on)
    print("epoch 1 done", flush=True)
    run.track(1.0, name="loss")
    time.sleep(1.2)
    print("epoch 2 done", flush=True)
    sys.stderr.write("a warning line\\n")
    run.close()
    sys.__stdout__.write("HASH " + run.hash + "\\n")
""")


def _track(url: str, interval: str) -> str:
    done = subprocess.run([sys.executable, "-c", CLIENT, url, interval], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "epoch 1 done" in done.stdout  # the capture is a tee: the terminal still sees it
    return next(line.split()[1] for line in done.stdout.splitlines() if line.startswith("HASH"))


def _system(run) -> dict:
    return {m.name: m for m in run.metrics() if m.name.startswith("__system__")}


def test_system_metrics_params_and_terminal_logs_reach_the_server(server):
    run_hash = _track(server.url, "0.2")
    run = Repo(server.repo).get_run(run_hash)  # read on the server's machine
    metrics = _system(run)
    assert set(metrics) >= CPU_SET
    cpu = metrics["__system__cpu"]
    assert len(cpu.steps) >= 2
    assert cpu.steps.tolist() == list(range(len(cpu.steps)))  # sample numbers, none lost
    assert run.get_metric("loss").values.tolist() == [1.0]
    assert run["__system_params"]["executable"] == sys.executable
    listed = Repo(server.url).get_run(run_hash)  # through the API: file-only params too
    assert listed["__system_params"] == run["__system_params"]
    assert "__system__cpu" in {m.name for m in listed.metrics()}
    (from_list,) = Repo(server.url).iter_runs()  # a listing's catalog entry leaves them out
    assert from_list["__system_params"] == run["__system_params"]
    lines = [line.data for _, (line, _, _) in run.get_terminal_logs().data.items()]
    assert lines == ["epoch 1 done", "epoch 2 done", "a warning line"]


def test_none_records_nothing(server):
    run_hash = _track(server.url, "none")
    run = Repo(server.repo).get_run(run_hash)
    assert [m.name for m in run.metrics()] == ["loss"]
    assert run.get_terminal_logs() is None
    assert "__system_params" not in run.params


RESUME = textwrap.dedent("""
    import sys, time
    from aim_core import Run
    run = Run(sys.argv[2], repo=sys.argv[1], system_tracking_interval=0.2)
    print("resumed", flush=True)
    time.sleep(0.8)
    run.close()
""")


def test_a_resumed_run_continues_its_sample_and_line_numbers(server):
    run_hash = _track(server.url, "0.2")
    before = Repo(server.repo).get_run(run_hash)
    samples = len(before.get_metric("__system__cpu").steps)
    done = subprocess.run([sys.executable, "-c", RESUME, server.url, run_hash],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    run = Repo(server.repo).get_run(run_hash)
    steps = run.get_metric("__system__cpu").steps.tolist()
    assert len(steps) > samples and steps == list(range(len(steps)))
    logs = run.get_terminal_logs().data.items()
    assert [(step, line.data) for step, (line, _, _) in logs][-2:] == [
        (2, "a warning line"), (3, "resumed")]


DOWN = textwrap.dedent("""
    import sys, time
    from aim_core import Run
    run = Run(repo=sys.argv[1], system_tracking_interval=0.2)
    for i in range(20):
        run.track(float(i), name="loss", step=i)
        print("line", i, flush=True)
        time.sleep(0.1)
    run.close()
    sys.__stdout__.write("HASH " + run.hash + "\\n")
""")


def test_samples_and_lines_made_while_the_server_is_away_arrive_later(server_factory):
    server = server_factory(start=False)
    client = subprocess.Popen([sys.executable, "-c", DOWN, server.url], text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.5)
    server.start()
    out, err = client.communicate(timeout=120)
    assert client.returncode == 0, err
    assert "unreachable" in err  # it was away while the client ran
    run_hash = next(line.split()[1] for line in out.splitlines() if line.startswith("HASH"))
    run = Repo(server.repo).get_run(run_hash)
    assert run.get_metric("loss").steps.tolist() == list(range(20))
    steps = run.get_metric("__system__cpu").steps.tolist()
    assert len(steps) >= 3 and steps == list(range(len(steps)))
    lines = [line.data for _, (line, _, _) in run.get_terminal_logs().data.items()]
    assert [line for line in lines if line.startswith("line ")] == [f"line {i}" for i in range(20)]
