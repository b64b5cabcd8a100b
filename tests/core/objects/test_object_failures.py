"""Object sequences keep the metrics' promises: kill -9, SIGTERM, full disk, bad elements."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

from aim_core import Image, Repo, Run, Text
from aim_core.errors import StorageError

QUIET = {"system_tracking_interval": None, "capture_terminal_logs": False}  # counts exact sequences

WRITER = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    from aim_core import Image, Run, Text
    repo, interval = sys.argv[1], float(sys.argv[2])
    run = Run(repo=repo, system_tracking_interval=None, flush_interval=interval)
    print(json.dumps({"hash": run.hash}), flush=True)
    pixels = np.zeros((16, 16, 3), np.uint8)
    for i in range(10**9):
        run.track(Image(pixels + i % 256, caption=str(i)), name="frames", step=i)
        run.track(Text(f"line {i}"), name="lines", step=i)
        print(json.dumps({"step": i, "t": time.time()}), flush=True)
        time.sleep(0.003)
""")


def start_writer(repo, interval):
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(repo), str(interval)],
                            stdout=subprocess.PIPE, text=True)
    return proc, json.loads(proc.stdout.readline())["hash"]


def read_progress(proc, seconds):
    seen, deadline = [], time.time() + seconds
    while time.time() < deadline:
        line = json.loads(proc.stdout.readline())
        seen.append((line["step"], line["t"]))
    return seen


def test_kill_9_loses_at_most_one_flush_interval(repo_path):
    interval = 0.2
    proc, run_hash = start_writer(repo_path, interval)
    seen = read_progress(proc, 2.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = time.time()
    must_have = [step for step, t in seen if t < killed_at - interval - 0.5]
    assert len(must_have) > 20, "the writer made too little progress"
    run = Repo(repo_path).get_run(run_hash)
    assert run.status == "crashed"
    frames = run.get_image_sequence("frames")
    assert frames.steps.tolist()[: len(must_have)] == must_have
    last = frames.values.last()[1]
    assert last.caption == str(frames.last_step)
    assert np.asarray(last.to_pil_image()).max() == frames.last_step % 256
    lines = run.get_text_sequence("lines").steps.tolist()
    assert lines[: len(must_have)] == must_have


def test_sigterm_loses_nothing(repo_path):
    proc, run_hash = start_writer(repo_path, 30.0)  # nothing flushes on its own
    seen = read_progress(proc, 0.7)
    proc.send_signal(signal.SIGTERM)
    tail = proc.stdout.read()
    proc.wait(timeout=60)
    last = max([step for step, _ in seen] +
               [json.loads(line)["step"] for line in tail.splitlines() if "step" in line])
    run = Repo(repo_path).get_run(run_hash)
    assert run.get_image_sequence("frames").steps.tolist() == list(range(last + 1))
    assert run.get_text_sequence("lines").values.last()[1].data == f"line {last}"
    assert run.status == "failed"


def limit_file_size(run, pages):
    """Make SQLite report a full disk for this run's file beyond ``pages`` pages."""
    with run._writer._flush_lock:
        run._writer.file.kv.conn.execute(f"PRAGMA max_page_count = {pages}")


def wait_for(predicate, seconds=15.0):
    deadline = time.time() + seconds
    while time.time() < deadline and not predicate():
        time.sleep(0.05)
    return predicate()


def test_a_full_disk_keeps_elements_buffered_and_recovers(repo_path):
    run = Run(repo=repo_path, **QUIET, flush_interval=0.05)
    run.flush()
    limit_file_size(run, 8)
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(300):
            run.track(Image(noise, caption=str(i)), name="noise")  # never raises
        assert wait_for(lambda: run._writer._last_error is not None)
        time.sleep(0.3)  # several failing retries
    assert len([w for w in caught if "could not write run" in str(w.message)]) == 1
    assert run._writer.pending_count() == 300
    limit_file_size(run, 1_000_000)
    assert wait_for(lambda: run._writer.pending_count() == 0)
    run.close()
    seq = Repo(repo_path).get_run(run.hash).get_image_sequence("noise")
    assert seq.count == 300
    assert [v.caption for v in seq.values.values_list()] == [str(i) for i in range(300)]
    assert np.array_equal(np.asarray(seq.values[123].to_pil_image()), noise)


def test_close_reports_elements_it_could_not_write(repo_path):
    run = Run(repo=repo_path, **QUIET, flush_interval=3600)
    run.track(Text("kept"), name="ok")
    run.flush()
    limit_file_size(run, 6)
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    for _ in range(20):
        run.track(Image(noise), name="noise")
    with pytest.raises(StorageError, match="20 points could not be written"):
        run.close()
    stored = Repo(repo_path).get_run(run.hash)
    assert stored.get_text_sequence("ok").values.first()[1].data == "kept"


class Unencodable(Text):
    """A Text whose encoding fails on the flusher (as a broken figure or image would)."""

    def _encode(self, source):
        raise ValueError("cannot encode this one")


def test_an_element_that_cannot_be_encoded_is_dropped_with_one_warning(repo_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # Python's default: a message shows once
        with Run(repo=repo_path, **QUIET) as run:
            for i in range(5):
                run.track(Text(f"good {i}"), name="notes", step=i)
                run.track(Unencodable("bad"), name="notes", step=100 + i)
                run.track(float(i), name="loss", step=i)
    dropped = [w for w in caught if "could not encode" in str(w.message)]
    assert len(dropped) == 1 and "cannot encode this one" in str(dropped[0].message)
    stored = Repo(repo_path).get_run(run.hash)
    assert stored.get_text_sequence("notes").steps.tolist() == [0, 1, 2, 3, 4]
    assert stored.get_metric("loss").values.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
