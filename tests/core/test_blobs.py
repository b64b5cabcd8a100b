"""Blob files: shared by content, gone with the last run that uses them, rebuildable."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from aim_core.errors import BlobMissingError
from aim_core.storage.blobs import BlobStore, blob_sha

DATA = b"\x89PNG" + bytes(range(256)) * 300


@pytest.fixture
def store(tmp_path):
    return BlobStore(tmp_path / ".aim_core" / "blobs")


def shared(store, sha):
    return store.root / sha


def test_put_is_content_addressed_and_shared(store):
    sha = store.put("run1", DATA)
    assert sha == blob_sha(DATA)
    assert shared(store, sha).read_bytes() == DATA
    assert store.put("run2", DATA) == sha
    assert store.put("run2", DATA) == sha  # again: nothing new
    assert os.stat(store.path("run1", sha)).st_ino == os.stat(store.path("run2", sha)).st_ino
    assert os.stat(shared(store, sha)).st_nlink == 3
    assert store.read("run2", sha, len(DATA)) == DATA
    assert store.run_blobs("run1") == {sha}
    assert os.listdir(store.tmp_dir) == []


def test_blob_goes_with_the_last_run_that_uses_it(store):
    sha = store.put("run1", DATA)
    other = store.put("run1", b"only in run1")
    store.put("run2", DATA)
    store.remove_run("run1")
    assert not (store.runs_root / "run1").exists()
    assert not shared(store, other).exists()
    assert shared(store, sha).exists()
    assert store.read("run2", sha) == DATA
    store.remove_run("run2")
    assert not shared(store, sha).exists()
    assert os.listdir(store.runs_root) == []
    store.remove_run("never-existed")


def test_copy_to_another_repo_is_a_real_copy(store, tmp_path):
    dest = BlobStore(tmp_path / "other" / ".aim_core" / "blobs")
    sha = store.put("run1", DATA)
    store.copy_run("run1", dest)
    assert dest.read("run1", sha, len(DATA)) == DATA
    assert os.stat(dest.path("run1", sha)).st_ino != os.stat(store.path("run1", sha)).st_ino
    store.copy_run("run1", dest, dest_hash="run9")  # shares the copy already in dest
    assert os.stat(dest.path("run9", sha)).st_ino == os.stat(dest.path("run1", sha)).st_ino
    store.remove_run("run1")  # a move is copy then remove
    assert not shared(store, sha).exists()
    assert dest.read("run9", sha) == DATA
    dest.remove_run("run1")
    dest.remove_run("run9")
    assert not shared(dest, sha).exists()


def test_missing_or_cut_short_blob_raises(store):
    sha = store.put("run1", DATA)
    with open(store.path("run1", sha), "r+b") as f:
        f.truncate(10)
    with pytest.raises(BlobMissingError, match="cut short"):
        store.read("run1", sha, len(DATA))
    with pytest.raises(BlobMissingError, match="missing"):
        store.read("run1", "0" * 64)


def test_rebuild_from_what_run_files_reference(store):
    sha = store.put("run1", DATA)
    gone = store.put("deleted-run", b"left behind by an interrupted rm")
    os.unlink(store.path("run1", sha))  # a lost link
    (store.runs_root / "run2").mkdir()
    store.tmp_dir.mkdir(exist_ok=True)
    (store.tmp_dir / "123-crashed").write_bytes(b"partial")
    young = store.rebuild({"run1": [sha], "run2": [sha, "f" * 64]}, min_age=3600)
    assert young["relinked"] == [("run1", sha), ("run2", sha)]
    assert young["missing"] == [("run2", "f" * 64)]
    assert young["removed_runs"] == []  # too young: a writer may be adding it right now
    assert (store.tmp_dir / "123-crashed").exists()
    old = time.time() - 7200
    for path in (store.runs_root / "deleted-run", store.tmp_dir / "123-crashed"):
        os.utime(path, (old, old))
    report = store.rebuild({"run1": [sha], "run2": [sha]}, min_age=3600)
    assert report["removed_runs"] == ["deleted-run"]
    assert not shared(store, gone).exists()
    assert os.listdir(store.tmp_dir) == []
    assert store.read("run1", sha) == DATA and store.read("run2", sha) == DATA


def test_orphan_shared_copy_is_collected_when_old(store):
    sha = store.put("run1", DATA)
    os.unlink(store.path("run1", sha))
    os.rmdir(store.runs_root / "run1")
    assert store.rebuild({}, min_age=3600)["removed_blobs"] == []
    old = time.time() - 7200
    os.utime(shared(store, sha), (old, old))
    assert store.rebuild({}, min_age=3600)["removed_blobs"] == [sha]


def test_without_hard_links_each_run_keeps_a_copy(store, monkeypatch):
    def no_links(src, dst, *args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)  # as on a file system without hard links
    sha = store.put("run1", DATA)
    assert store.put("run2", DATA) == sha
    assert store.read("run1", sha, len(DATA)) == DATA
    assert store.read("run2", sha, len(DATA)) == DATA
    store.remove_run("run1")
    assert store.read("run2", sha) == DATA
    assert os.listdir(store.tmp_dir) == []


def test_processes_storing_the_same_content_at_once(store):
    code = (
        "import sys\n"
        "from aim_core.storage.blobs import BlobStore\n"
        "store = BlobStore(sys.argv[1])\n"
        "for i in range(40):\n"
        "    store.put(sys.argv[2], (b'%d' % i) * 50_000)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(store.root), f"run{n}"])
             for n in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 4
    for n in range(4):
        for i in range(40):
            data = (b"%d" % i) * 50_000
            assert store.read(f"run{n}", blob_sha(data), len(data)) == data
    for n in range(4):
        store.remove_run(f"run{n}")
    assert sorted(os.listdir(store.root)) == ["runs", "tmp"]
    assert os.listdir(store.tmp_dir) == []


SYNCED = """
import sys
import numpy as np
from aim_core import Image, Run
run = Run(repo=sys.argv[1], system_tracking_interval=None, capture_terminal_logs=False)
noise = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
run.track(Image(noise), name="big")  # a PNG of noise: well over the blob threshold
run.close()
"""


def test_blob_data_and_names_are_synced_before_the_run_refers_to_them(tmp_path):
    import re
    import shutil

    if shutil.which("strace") is None:
        pytest.skip("needs strace")
    trace = tmp_path / "trace.txt"
    done = subprocess.run(["strace", "-f", "-y", "-e", "trace=fsync,fdatasync", "-o", str(trace),
                           sys.executable, "-c", SYNCED, str(tmp_path / "repo")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    blobs = tmp_path / "repo" / ".aim_core" / "blobs"
    (sha,) = [n for n in os.listdir(blobs) if len(n) == 64]
    synced = re.findall(r"f(?:data)?sync\(\d+<([^>]*)>\) = 0", trace.read_text())
    assert any(path.startswith(str(blobs / "tmp")) for path in synced), synced  # the data
    assert str(blobs) in synced and str(blobs / "runs" / os.listdir(blobs / "runs")[0]) in synced
    assert str(blobs / "runs") in synced  # the run's folder name itself
    assert (blobs / sha).stat().st_size > 64 * 1024
