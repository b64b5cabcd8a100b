"""Run.track of accelerator scalars: held, converted in batches, written exactly.

No accelerator here: the internal switch makes real CPU tensors take the deferred path.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from aim_core import Repo, Run, deferred

torch = pytest.importorskip("torch")


@pytest.fixture
def switch_on():
    """Treat CPU tensors as accelerator tensors for the test."""
    deferred.defer_cpu_tensors(True)
    yield
    deferred.resolve_held()
    deferred.defer_cpu_tensors(False)


def _pending_values(run: Run, name: str, context=None) -> list:
    seq = run._writer.find_sequence(name, context or {})
    return [point[1] for point in seq.pending]


def test_values_steps_and_order_are_exact(repo_path, switch_on):
    dtypes = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64]
    shapes = [(), (1,), (1, 1)]
    expected = []
    with Run(repo=repo_path, flush_interval=3600) as run:
        for i in range(60):
            tensor = torch.tensor(1 / (i + 3) + i).to(dtypes[i % 5]).reshape(shapes[i % 3])
            step = 1000 - 7 * i if i % 2 else None  # explicit steps out of order, defaults
            run.track(tensor, name="loss", step=step, epoch=i // 10,
                      context={"subset": "train"})
            expected.append(float(tensor.item()))
        assert all(type(v) is deferred.DeviceValue for v in
                   _pending_values(run, "loss", {"subset": "train"}))
        run_hash = run.hash
    metric = Repo(repo_path).get_run(run_hash).get_metric("loss", {"subset": "train"})
    steps = []
    for i in range(60):
        steps.append(1000 - 7 * i if i % 2 else (max(steps) + 1 if steps else 0))
    order = sorted(range(60), key=lambda i: steps[i])
    assert metric.steps.tolist() == [steps[i] for i in order]
    assert metric.values.tolist() == [expected[i] for i in order]
    assert metric.epochs.tolist() == [float(i // 10) for i in order]
    assert metric.last == expected[order[-1]] and metric.count == 60


def test_in_place_change_after_track_does_not_change_the_stored_value(repo_path, switch_on):
    loss = torch.tensor(0.5, requires_grad=True) * 1.0
    with Run(repo=repo_path, flush_interval=3600) as run:
        acc = torch.zeros(1)
        for step in range(5):
            acc += step + 0.25  # the caller keeps changing the tensor it tracked
            run.track(acc, name="acc", step=step)
        run.track(loss, name="loss")
        with torch.no_grad():
            loss.mul_(100)
        run_hash = run.hash
    stored = Repo(repo_path).get_run(run_hash)
    assert stored.get_metric("acc").values.tolist() == [0.25, 1.5, 3.75, 7.0, 11.25]
    assert stored.get_metric("loss").values.tolist() == [0.5]


def test_step_epoch_and_timestamp_are_taken_at_track_time(repo_path, switch_on):
    with Run(repo=repo_path, flush_interval=3600) as run:
        before = time.time()
        run.track(torch.tensor(1.0), name="x", epoch=3)
        after = time.time()
        time.sleep(0.3)
        run.track(torch.tensor(2.0), name="x")
        run_hash = run.hash
    metric = Repo(repo_path).get_run(run_hash).get_metric("x")
    assert metric.steps.tolist() == [0, 1]
    assert before <= metric.timestamps[0] <= after < metric.timestamps[1] - 0.25
    assert metric.epochs[0] == 3.0 and math.isnan(metric.epochs[1])


def test_nan_and_inf_are_stored(repo_path, switch_on):
    with Run(repo=repo_path) as run:
        for value in (math.nan, math.inf, -math.inf, 1.0):
            run.track(torch.tensor(value), name="x")
        run_hash = run.hash
    metric = Repo(repo_path).get_run(run_hash).get_metric("x")
    values = metric.values.tolist()
    assert math.isnan(values[0]) and values[1:] == [math.inf, -math.inf, 1.0]
    assert metric.max == math.inf and metric.min == -math.inf


def test_a_live_run_reads_its_pending_device_values(repo_path, switch_on):
    with Run(repo=repo_path, flush_interval=3600) as run:
        run.track(torch.tensor(0.125), name="loss", context={"subset": "val"})
        run.track({"loss": torch.tensor([0.25]), "acc": torch.tensor(0.75)},
                  context={"subset": "val"})
        metric = run.get_metric("loss", {"subset": "val"})
        assert metric.values.tolist() == [0.125, 0.25] and metric.steps.tolist() == [0, 1]
        assert run.get_metric("acc", {"subset": "val"}).values.tolist() == [0.75]
        assert deferred.held_count() == 0  # reading converted every held value at once
        run.track(torch.tensor(0.5), name="loss", context={"subset": "val"})
        assert run.get_metric("loss", {"subset": "val"}).last == 0.5


def test_numpy_scalars_and_cpu_tensors_keep_the_float_path(repo_path):
    with Run(repo=repo_path, flush_interval=3600) as run:
        run.track(np.float32(0.5), name="x")
        run.track(torch.tensor(0.25), name="x")
        run.track(torch.tensor([1.5], requires_grad=True), name="x")
        run.track({"y": torch.tensor(2.0)})
        assert [type(v) for v in _pending_values(run, "x")] == [float, float, float]
        assert [type(v) for v in _pending_values(run, "y")] == [float]
    assert deferred.held_count() == 0


def test_bad_values_still_raise_and_record_nothing(repo_path, switch_on):
    with Run(repo=repo_path) as run:
        with pytest.raises(TypeError, match="'x'"):
            run.track(torch.zeros(3), name="x")
        with pytest.raises(TypeError, match="'bad'"):
            run.track({"ok": torch.tensor(1.0), "bad": torch.zeros(2)})
        assert run.get_metric("x") is None and run.get_metric("ok") is None


def test_the_flusher_converts_once_the_hold_limit_is_reached(repo_path, switch_on, monkeypatch):
    monkeypatch.setattr(deferred, "HOLD_LIMIT", 50)
    with Run(repo=repo_path, flush_interval=3600) as run:
        for i in range(50):
            run.track(torch.tensor(float(i)), name="x")
        deadline = time.time() + 10
        while deferred.held_count() and time.time() < deadline:
            time.sleep(0.01)
        assert deferred.held_count() == 0  # converted on the flusher's thread, nothing written
        assert [type(v.value) for v in _pending_values(run, "x")] == [float] * 50
        run_hash = run.hash
    assert Repo(repo_path).get_run(run_hash).get_metric("x").values.tolist() == \
        [float(i) for i in range(50)]


WRITER = textwrap.dedent("""
    import json, sys, time
    import torch
    from aim_core import Run
    repo, interval = sys.argv[1], float(sys.argv[2])
    run = Run(repo=repo, flush_interval=interval)
    print(json.dumps({"hash": run.hash}), flush=True)
    loss = torch.zeros(())
    for i in range(10**12):
        loss.fill_(i + 0.5)  # one tensor changed in place after every track()
        run.track(loss, name="loss", step=i, context={"subset": "train"})
        print(json.dumps({"step": i, "t": time.time()}), flush=True)
        time.sleep(0.002)
""")


def _start_writer(repo, interval):
    env = {**os.environ, "AIM_CORE_DEFER_CPU_TENSORS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(repo), str(interval)],
                            stdout=subprocess.PIPE, text=True, env=env)
    return proc, json.loads(proc.stdout.readline())["hash"]


def _read_until(proc, seconds):
    seen, deadline = [], time.time() + seconds
    while time.time() < deadline:
        line = json.loads(proc.stdout.readline())
        seen.append((line["step"], line["t"]))
    return seen


def test_kill_9_keeps_the_device_values_flushed_before_it(repo_path):
    proc, run_hash = _start_writer(repo_path, 0.2)
    seen = _read_until(proc, 2.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = time.time()
    must_have = [step for step, t in seen if t < killed_at - 0.2 - 0.5]
    assert must_have, "the writer made too little progress"
    run = Repo(repo_path).get_run(run_hash)
    metric = run.get_metric("loss", {"subset": "train"})
    assert run.status == "crashed"
    assert metric.steps.tolist()[: len(must_have)] == must_have
    assert metric.values.tolist() == [step + 0.5 for step in metric.steps.tolist()]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_sigterm_and_ctrl_c_convert_and_write_every_held_value(repo_path, signum):
    proc, run_hash = _start_writer(repo_path, 30.0)  # nothing flushes on its own
    seen = _read_until(proc, 0.7)
    proc.send_signal(signum)
    tail = proc.stdout.read()
    proc.wait(timeout=20)
    last = max([step for step, _ in seen] +
               [json.loads(line)["step"] for line in tail.splitlines() if "step" in line])
    run = Repo(repo_path).get_run(run_hash)
    metric = run.get_metric("loss", {"subset": "train"})
    assert run.status == "failed"
    assert metric.steps.tolist() == list(range(last + 1))
    assert metric.values.tolist() == [step + 0.5 for step in range(last + 1)]


def test_exit_without_close_converts_and_writes_every_held_value(repo_path):
    code = ("import sys, torch\nfrom aim_core import Run\nrun = Run(repo=sys.argv[1], "
            "flush_interval=3600)\nfor i in range(3000):\n"
            "    run.track(torch.tensor(i, dtype=torch.float16), name='x')\nprint(run.hash)\n")
    env = {**os.environ, "AIM_CORE_DEFER_CPU_TENSORS": "1"}
    out = subprocess.run([sys.executable, "-c", code, str(repo_path)], capture_output=True,
                         text=True, timeout=120, check=True, env=env).stdout
    run = Repo(repo_path).get_run(out.strip())
    expected = [float(torch.tensor(i, dtype=torch.float16)) for i in range(3000)]
    assert run.status == "finished" and run.get_metric("x").values.tolist() == expected
