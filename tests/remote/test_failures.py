"""Network and process failures: nothing lost, nothing applied twice, training never stopped."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from remote_helpers import (
    SERVER_MAIN,
    ServerProcess,
    free_port,
    read_json_line,
    start_client,
    wait_until_up,
)

from aim_core import Repo, Run
from aim_core.remote.server_storage import applied_points
from aim_core.remote.spool import Spool
from aim_core.storage.flusher import FLUSH_AT_POINTS


def assert_complete(repo_path, run_hash: str, points: int, start: int = 0) -> None:
    """Every step of both metrics is stored, and the server applied each point once."""
    assert applied_points(Repo(repo_path), run_hash) == 2 * points
    run = Repo(repo_path).get_run(run_hash)
    for name, context in (("loss", {"subset": "train"}), ("acc", {})):
        steps = run.get_metric(name, context).steps
        assert len(steps) == points, (name, len(steps), points)
        assert np.array_equal(steps, np.arange(start, start + points)), name


def wait_for(predicate, timeout: float = 30.0, every: float = 0.1):
    """Poll ``predicate`` until it returns something truthy."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not reached in time")


def test_server_killed_and_restarted_mid_run_loses_and_repeats_nothing(server_factory):
    server = server_factory()
    client = start_client(server.url, "--points", "3000", "--sleep", "0.001", "--report", "100")
    run_hash = read_json_line(client)["hash"]
    while read_json_line(client)["step"] < 600:
        pass
    server.kill()
    time.sleep(1.0)  # the client keeps training and spools meanwhile
    server.start()
    out = client.stdout.read().strip().splitlines()
    assert client.wait(timeout=120) == 0, client.stderr.read()
    assert json.loads(out[-1])["hashes"] == [run_hash]
    assert_complete(server.repo, run_hash, 3000)
    assert Repo(server.url).get_run(run_hash).status == "finished"


def test_client_started_while_server_down_catches_up(server_factory):
    server = server_factory(start=False)
    client = start_client(server.url, "--points", "500", "--sleep", "0.002", "--report", "100")
    run_hash = read_json_line(client)["hash"]
    read_json_line(client)
    time.sleep(1.0)
    server.start()
    assert client.wait(timeout=120) == 0, client.stderr.read()
    assert_complete(server.repo, run_hash, 500)
    run = Repo(server.url).get_run(run_hash)
    assert run.status == "finished" and run["hparams"] == {"client": "c", "index": 0}


def test_close_gives_up_after_its_timeout_and_a_later_client_delivers_the_spool(
        server_factory, tmp_path):
    server = server_factory(start=False)
    client = start_client(server.url, "--points", "300",
                          env={"AIM_CORE_REMOTE_CLOSE_TIMEOUT": "0.5"})
    run_hash = read_json_line(client)["hash"]
    assert client.wait(timeout=60) == 0
    stderr = client.stderr.read()
    spool_dir = tmp_path / "spool"
    spooled = list(spool_dir.rglob(f"{run_hash}-*.spool"))
    assert len(spooled) == 1 and str(spooled[0]) in stderr.replace("\n", "")
    assert "did not acknowledge 600 points" in stderr
    server.start()
    other = Run(repo=server.url)  # any later client of this server replays the orphan
    other.close()
    wait_for(lambda: Repo(server.url).run_exists(run_hash)
             and Repo(server.url).get_run(run_hash).status == "finished")
    assert_complete(server.repo, run_hash, 300)
    wait_for(lambda: not spooled[0].exists())


def test_training_never_waits_or_raises_while_the_server_is_away(server_factory, monkeypatch):
    server = server_factory(start=False)
    monkeypatch.setenv("AIM_CORE_REMOTE_CLOSE_TIMEOUT", "0.3")
    run = Run(repo=server.url, system_tracking_interval=None, capture_terminal_logs=False)
    run["hparams"] = {"lr": 0.1}
    for step in range(20_000):
        run.track(float(step), name="loss", step=step)
    with pytest.warns(RuntimeWarning, match=r"did not acknowledge 20000 points .* kept in "):
        run.close()


def test_client_killed_leaves_run_crashed_and_another_process_resumes_it(server_factory):
    server = server_factory()
    client = start_client(server.url, "--points", "100000", "--sleep", "0.002",
                          "--report", "50")
    run_hash = read_json_line(client)["hash"]
    while read_json_line(client)["step"] < 200:
        pass
    os.kill(client.pid, signal.SIGKILL)
    client.wait()
    repo = Repo(server.url)
    assert repo.get_run(run_hash).status == "running"  # until ~3 heartbeats are missed
    wait_for(lambda: repo.get_run(run_hash).status == "crashed", timeout=20)
    stored = len(repo.get_run(run_hash).get_metric("loss", {"subset": "train"}).steps)
    assert stored >= 100
    resumed = start_client(server.url, "--resume", run_hash, "--points", "50",
                           "--start", str(stored))
    assert resumed.wait(timeout=60) == 0, resumed.stderr.read()
    run = repo.get_run(run_hash)
    assert run.status == "finished"
    steps = run.get_metric("loss", {"subset": "train"}).steps
    assert steps[-1] == stored + 49 and len(np.unique(steps)) == len(steps)


def test_an_idle_client_re_attaches_its_run_after_a_server_restart(server_factory):
    server = server_factory()
    run = Run(repo=server.url)
    run.track(1.0, name="x")
    run.flush()
    repo = Repo(server.url)
    server.kill()
    server.start()
    # the new server holds nothing until the idle client's next heartbeat re-attaches it
    wait_for(lambda: repo.get_run(run.hash).status == "running", timeout=10)
    run.track(2.0, name="x")
    run.close()
    stored = repo.get_run(run.hash)
    assert stored.status == "finished" and stored.get_metric("x").values.tolist() == [1.0, 2.0]


def test_a_batch_resent_after_its_run_closed_changes_nothing(server):
    import httpx

    from aim_core.remote.protocol import Op, Sequence, columns_of, encode_batch

    create = Op("create", {"props": {"creation_time": 1.0}, "heartbeat": 5.0})
    points = Op("points", sequences=[Sequence("x", {}, "metric", columns_of([(0, 1.0, 0.0, 1.0)]))])
    first = encode_batch("late1", "s1", 1, [create, points], 5.0)
    close = encode_batch("late1", "s1", 2, [Op("close", {"status": "finished"})], 5.0)
    url = f"{server.http}/remote/v1/runs/late1/batches"
    with httpx.Client() as http:
        assert http.post(url, content=first).json()["applied"]
        assert http.post(url, content=close).json()["applied"]
        for body in (first, close):  # a delayed copy of each arrives after the close
            assert http.post(url, content=body).json() == {"applied": False,
                                                           "seq": 1 if body is first else 2}
    stored = Repo(server.url).get_run("late1")
    assert stored.status == "finished" and stored.get_metric("x").values.tolist() == [1.0]


def test_a_full_spool_drops_batches_and_close_says_so(server_factory, monkeypatch):
    from aim_core.errors import RemoteError

    server = server_factory(start=False)
    monkeypatch.setenv("AIM_CORE_REMOTE_CLOSE_TIMEOUT", "0.3")
    monkeypatch.setenv("AIM_CORE_SPOOL_MAX_MB", "0.05")  # 50 kB: a few batches at most
    rng = np.random.default_rng(0)
    with pytest.warns(RuntimeWarning) as caught:
        run = Run(repo=server.url, flush_interval=0.05)
        for step in range(200_000):  # random values do not compress: the spool fills up
            run.track(float(rng.random()), name="loss", step=step)
            if step % 20_000 == 0:
                time.sleep(0.1)  # let the sender form batches as training goes on
        with pytest.raises(RemoteError, match="did not fit in the spool"):
            run.close()
    messages = " ".join(str(w.message) for w in caught)
    assert "points dropped: the spool is full" in messages
    assert "did not acknowledge" in messages


SILENT_SERVER_CLIENT = """
import json, os, socket, sys, time
import numpy as np
silent = socket.socket()
silent.bind(("127.0.0.1", 0))
silent.listen(16)  # takes connections, never answers: a hung server or a dead proxy
from aim_core import Run
from aim_core.remote import outbox
from aim_core.storage.flusher import FLUSH_AT_POINTS
outbox.SPILL_BYTES = 1 << 20
run = Run(repo=f"aim://127.0.0.1:{silent.getsockname()[1]}", system_tracking_interval=None,
          capture_terminal_logs=False)
writer, total = run._writer, 800_000
for step, value in enumerate(np.random.default_rng(0).random(total).tolist()):
    run.track(value, name="loss", step=step)
deadline = time.time() + 30
while writer.pending_count() >= FLUSH_AT_POINTS and time.time() < deadline:
    time.sleep(0.05)
report = {"pending": writer.pending_count(), "memory": writer.outbox._memory_bytes,
          "spooled": writer.outbox.points, "where": writer.outbox.where()}
run.close()
print(json.dumps(report))
"""


def test_a_silent_server_keeps_client_memory_bounded_and_the_points_spooled(client_env,
                                                                           tmp_path):


    env = {**os.environ, "AIM_CORE_REMOTE_CLOSE_TIMEOUT": "1"}
    done = subprocess.run([sys.executable, "-c", SILENT_SERVER_CLIENT], env=env,
                          capture_output=True, text=True, timeout=180, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["pending"] < FLUSH_AT_POINTS  # formed into batches while the sender waits
    assert report["memory"] <= 1 << 20  # ... and those went to the spool on disk
    assert report["pending"] + report["spooled"] == 800_000
    assert "did not acknowledge 800000 points" in done.stderr
    spool = Spool(report["where"], create=False)
    try:
        assert spool.points == 800_000  # close() spooled the rest: nothing lost
    finally:
        spool.close()


def test_a_server_whose_stderr_cannot_be_written_still_answers_errors(tmp_path, client_env):


    repo = Repo(tmp_path / "repo", init=True)
    (repo.runs_dir / "abc.sqlite").mkdir()  # a run file that cannot be opened: a 503
    port = free_port()
    with open("/dev/full", "w") as full:  # every write fails, as on a full disk
        server = subprocess.Popen([sys.executable, "-c", SERVER_MAIN, "server", "--repo",
                                   str(tmp_path / "repo"), "--port", str(port)],
                                  stdout=subprocess.PIPE, stderr=full, text=True)
    try:
        assert "aim-core server" in server.stdout.readline()
        wait_until_up(f"http://127.0.0.1:{port}")
        for path in ("/runs/abc/state", "/runs/abc/series?name=x"):
            answer = httpx.get(f"http://127.0.0.1:{port}/remote/v1{path}", timeout=30)
            assert answer.status_code == 503, (path, answer.text)
            assert "cannot be read now" in answer.json()["error"]
    finally:
        server.terminate()
        server.wait(timeout=20)
        server.stdout.close()


SEVERAL_RUNS_CLIENT = """
import sys
from aim_core import Run
runs = [Run(repo=sys.argv[1], system_tracking_interval=None, capture_terminal_logs=False)
        for _ in range(3)]
for run in runs:
    for i in range(100):
        run.track(float(i), name="loss", step=i)
"""  # no close(): the process exits, as a script whose server went away does


def test_closing_several_runs_waits_for_a_silent_server_once(server_factory, client_env):

    server = server_factory(start=False)  # never comes up
    env = {**os.environ, "AIM_CORE_REMOTE_CLOSE_TIMEOUT": "3"}
    done = subprocess.run([sys.executable, "-W", "always", "-c", SEVERAL_RUNS_CLIENT, server.url],
                          env=env, capture_output=True, text=True, timeout=120, check=True)
    waited = re.findall(r"did not acknowledge (\d+) points within (\S+) s", done.stderr)
    assert waited == [("100", "3"), ("100", "1"), ("100", "1")], done.stderr


STRICT_CLIENT = """
import json, sys, time
from aim_core import Run
run = Run(repo=sys.argv[1], system_tracking_interval=None, capture_terminal_logs=False)
print(json.dumps({"hash": run.hash}), flush=True)
for i in range(int(sys.argv[2])):
    run.track(float(i), name="loss", step=i)
    time.sleep(0.002)
run.close()
"""


def test_warnings_as_errors_do_not_stop_the_sender(server_factory, client_env):

    server = server_factory(start=False)
    client = subprocess.Popen(
        [sys.executable, "-W", "error", "-c", STRICT_CLIENT, server.url, "1500"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_hash = read_json_line(client)["hash"]
    time.sleep(1.0)  # the sender finds no server and warns: an error under -W error
    server.start()
    _, err = client.communicate(timeout=120)
    assert client.returncode == 0, err  # close() found everything acknowledged
    assert applied_points(Repo(server.repo), run_hash) == 1500


@pytest.fixture
def small_disk(tmp_path):
    """A 8 MiB tmpfs (needs root and mount; skipped elsewhere), unmounted after the test."""

    mount = tmp_path / "small_disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
                          capture_output=True)
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder):
    """Write a file until the disk is full; return it."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
    return filler


def test_a_full_disk_on_the_server_keeps_points_waiting_until_space_returns(
        client_env, small_disk, tmp_path, monkeypatch):

    monkeypatch.setenv("AIM_CORE_REMOTE_CLOSE_TIMEOUT", "60")
    (tmp_path / "on_disk").mkdir()
    (tmp_path / "on_disk" / "repo").symlink_to(small_disk)  # the server's log stays elsewhere
    server = ServerProcess(tmp_path / "on_disk" / "repo", free_port()).start()
    try:
        filler = _fill(small_disk)
        client = start_client(server.url, "--points", "500", "--sleep", "0.004",
                              "--report", "100")
        run_hash = read_json_line(client)["hash"]
        wait_for(lambda: "full" in server.log(), timeout=60)  # the server answers 503: retry
        assert client.poll() is None  # training goes on
        filler.unlink()
        out = client.stdout.read().strip().splitlines()
        assert client.wait(timeout=120) == 0, client.stderr.read()
        assert json.loads(out[-1])["hashes"] == [run_hash]
        assert_complete(server.repo, run_hash, 500)
        assert Repo(server.repo).get_run(run_hash).status == "finished"
    finally:
        server.stop()


def test_bad_client_settings_in_the_environment_fall_back_to_defaults(server):
    env = {"AIM_CORE_HEARTBEAT_INTERVAL": "7200",  # more than the server accepts
           "AIM_CORE_REMOTE_CLOSE_TIMEOUT": "30s", "AIM_CORE_SPOOL_MAX_MB": "lots"}
    client = start_client(server.url, "--points", "200", env=env)
    run_hash = read_json_line(client)["hash"]
    out, err = client.communicate(timeout=120)
    assert client.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1])["hashes"] == [run_hash]
    assert "AIM_CORE_HEARTBEAT_INTERVAL='7200' is not a number from" in err
    assert "AIM_CORE_REMOTE_CLOSE_TIMEOUT='30s'" in err
    assert_complete(server.repo, run_hash, 200)


def test_a_sender_left_retrying_stops_on_request_keeping_its_batches(server_factory,
                                                                     monkeypatch):
    server = server_factory(start=False)  # away for good
    monkeypatch.setenv("AIM_CORE_REMOTE_CLOSE_TIMEOUT", "1")
    run = Run(repo=server.url, system_tracking_interval=None, capture_terminal_logs=False)
    for i in range(50):
        run.track(float(i), name="loss", step=i)
    writer = run._writer
    sender = writer.sender
    with pytest.warns(RuntimeWarning, match="did not acknowledge 50 points"):
        run.close()
    assert sender.is_alive()  # retries while the process lives ...
    sender.stop()  # ... until a harness (Lightning's thread police) stops it
    assert not sender.is_alive()
    outbox = writer.outbox
    assert outbox.points == 50 and outbox.where().endswith(".spool")  # kept for a later client
