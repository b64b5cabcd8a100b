"""The system-metric sampler on its own: real thread, real psutil readings, real run files.

The runs here have their own sampling off and are subscribed by hand; tests of
``Run(system_tracking_interval=...)`` are in ``tests/core/test_run_system.py``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest

from aim_core import Repo, Run
from aim_core.system import sampler
from aim_core.system.gpu import GpuReader

CPU_SET = {"__system__cpu", "__system__memory_percent", "__system__p_memory_percent",
           "__system__disk_percent"}
GPU_NAMES = {"__system__gpu", "__system__gpu_memory_percent", "__system__gpu_temp",
             "__system__gpu_power_watts"}


def _busy(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(range(1000))


def _quiet_run(repo_path, run_hash=None):
    """A run that samples and captures nothing by itself."""
    return Run(run_hash, repo=repo_path, system_tracking_interval=None,
               capture_terminal_logs=False)


def _system_metrics(repo_path, run_hash):
    run = Repo(repo_path).get_run(run_hash)
    return {m.name: m for m in run.metrics() if m.name.startswith("__system__")}


def test_samples_appear_at_the_interval(repo_path):
    run = _quiet_run(repo_path)
    sub = sampler.subscribe(run._writer, 0.2)
    time.sleep(2.1)
    sub.stop()
    run.close()
    metrics = _system_metrics(repo_path, run.hash)
    assert set(metrics) >= CPU_SET
    cpu = metrics["__system__cpu"]
    assert 5 <= len(cpu.steps) <= 12  # about 11; fewer on a very busy machine
    assert cpu.steps.tolist() == list(range(len(cpu.steps)))
    gaps = np.diff(cpu.timestamps)
    assert 0.15 < float(np.median(gaps)) < 0.5
    assert abs(cpu.timestamps[0] - run.creation_time) < 1.5  # the first sample is at start
    for name in CPU_SET:  # all metrics of a sample share its step and timestamp
        assert metrics[name].steps.tolist() == cpu.steps.tolist()
        assert metrics[name].timestamps.tolist() == cpu.timestamps.tolist()
    assert 0 < metrics["__system__memory_percent"].values[0] <= 100
    assert 0 < metrics["__system__p_memory_percent"].values[0] <= 100
    assert 0 < metrics["__system__disk_percent"].values[0] <= 100


def test_cpu_is_the_process_share_of_one_core_over_each_interval(repo_path):
    run = _quiet_run(repo_path)
    sub = sampler.subscribe(run._writer, 0.5)
    time.sleep(0.3)
    idle_after = sub.samples
    time.sleep(0.4)  # an idle interval
    _busy(1.2)  # then busy ones
    sub.stop()
    run.close()
    values = _system_metrics(repo_path, run.hash)["__system__cpu"].values
    assert idle_after == 1
    assert values[1] < 50  # sleeping
    assert max(values[2:]) > 2 * values[1] + 5  # spinning (on a shared machine: not 100)


def test_a_run_closed_at_once_still_has_its_first_sample(repo_path):
    run = _quiet_run(repo_path)
    sampler.subscribe(run._writer, 60).stop()
    run.close()
    metrics = _system_metrics(repo_path, run.hash)
    assert set(metrics) >= CPU_SET
    assert all(len(m.steps) == 1 for m in metrics.values())


def test_a_resumed_run_continues_its_sample_numbers(repo_path):
    run = _quiet_run(repo_path)
    sampler.subscribe(run._writer, 60).stop()
    run.close()
    again = _quiet_run(repo_path, run.hash)
    sampler.subscribe(again._writer, 60).stop()
    again.close()
    cpu = _system_metrics(repo_path, run.hash)["__system__cpu"]
    assert cpu.steps.tolist() == [0, 1]


def test_one_thread_serves_runs_with_different_intervals(repo_path):
    fast, slow = _quiet_run(repo_path), _quiet_run(repo_path)
    subs = [sampler.subscribe(fast._writer, 0.1), sampler.subscribe(slow._writer, 0.7)]
    time.sleep(1.0)
    threads = [t for t in threading.enumerate() if t.name == "aim-core-system"]
    for sub in subs:
        sub.stop()
    fast.close()
    slow.close()
    assert len(threads) == 1
    assert not threads[0].is_alive()  # the last stop() ended the thread
    n_fast = len(_system_metrics(repo_path, fast.hash)["__system__cpu"].steps)
    n_slow = len(_system_metrics(repo_path, slow.hash)["__system__cpu"].steps)
    assert n_slow == 2 and n_fast > 3 * n_slow


def test_a_closed_run_leaves_the_sampler_quietly(repo_path):
    run = _quiet_run(repo_path)
    sub = sampler.subscribe(run._writer, 60)
    deadline = time.monotonic() + 10
    while sub.samples == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    run.close()  # without stopping the subscription first
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sub.take(sampler.read())  # the next due sample finds the run closed
    assert sub.stopped and sub.samples == 1
    assert sampler.running()
    sub.stop()
    assert not sampler.running()


@pytest.mark.parametrize("interval", [0, -1, 0.05, 86400.5, "10", float("nan"), True])
def test_a_bad_interval_warns_and_turns_sampling_off(interval):
    with pytest.warns(RuntimeWarning, match="system_tracking_interval"):
        assert sampler.check_interval(interval) is None


def test_good_intervals_and_none_pass_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sampler.check_interval(None) is None
        assert sampler.check_interval(0.1) == 0.1
        assert sampler.check_interval(10) == 10.0
        assert sampler.check_interval(86400) == 86400.0


NO_NVML = textwrap.dedent("""
    import sys, warnings
    warnings.simplefilter("error")
    if sys.argv[2] == "hide":
        sys.modules["pynvml"] = None  # as if nvidia-ml-py were not installed
    from aim_core import Repo, Run
    run = Run(repo=sys.argv[1], system_tracking_interval=0.1)
    run.close()
    names = sorted({m.name for m in Repo(sys.argv[1]).get_run(run.hash).metrics()})
    print(",".join(names))
""")


@pytest.mark.parametrize("mode", ["hide", "installed"])
def test_without_gpu_the_cpu_set_is_recorded_and_nothing_fails(repo_path, mode):
    if mode == "installed" and GpuReader().available:
        pytest.skip("this machine has an NVIDIA GPU")
    done = subprocess.run([sys.executable, "-c", NO_NVML, str(repo_path), mode],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert set(done.stdout.strip().split(",")) == CPU_SET


def test_import_aim_core_loads_neither_psutil_nor_pynvml():
    code = ("import sys, aim_core, aim_core.system.sampler, aim_core.system.terminal, "
            "aim_core.system.environment; print(sorted({'psutil', 'pynvml'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "[]"
