"""A failing disk never reaches track(): points stay buffered, one warning, retried."""

from __future__ import annotations

import time
import warnings

import pytest

from aim_core import Repo, Run
from aim_core.errors import StorageError


def _limit_file_size(run, pages):
    """Make SQLite report a full disk for this run's file beyond ``pages`` pages."""
    with run._writer._flush_lock:  # not in the middle of a flush on the flusher thread
        run._writer.file.kv.conn.execute(f"PRAGMA max_page_count = {pages}")


def _wait_for(predicate, seconds=10.0):
    deadline = time.time() + seconds
    while time.time() < deadline and not predicate():
        time.sleep(0.05)
    return predicate()


def test_full_disk_warns_once_keeps_points_and_recovers(repo_path):
    run = Run(repo=repo_path, flush_interval=0.05)
    run.flush()
    _limit_file_size(run, 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(30_000):
            run.track(float(i), name="loss")  # never raises
        assert _wait_for(lambda: run._writer._last_error is not None)
        time.sleep(0.3)  # several failing retries
    ours = [w for w in caught if "could not write run" in str(w.message)]
    assert len(ours) == 1
    assert run._writer.pending_count() == 30_000
    _limit_file_size(run, 1_000_000)
    assert _wait_for(lambda: run._writer.pending_count() == 0)
    run.close()
    values = Repo(repo_path).get_run(run.hash).get_metric("loss").values
    assert values.tolist() == [float(i) for i in range(30_000)]


def test_close_reports_points_it_could_not_write(repo_path):
    run = Run(repo=repo_path, flush_interval=3600)
    run.track(1.0, name="ok")
    run.flush()
    _limit_file_size(run, 4)
    for i in range(30_000):
        run.track(float(i), name="loss")
    with pytest.raises(StorageError, match="30000 points could not be written"):
        run.close()
    stored = Repo(repo_path).get_run(run.hash)  # what was stored before is intact
    assert stored.get_metric("ok").values.tolist() == [1.0]
