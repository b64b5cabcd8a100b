"""The catalog: rebuilt from the run files, read-only repos, read errors that are not damage."""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from aim_core import Repo, Run
from aim_core.cli import main as cli_main
from aim_core.errors import CatalogDamagedError, NewerFormatError
from aim_core.storage.catalog import close_idle


def _make_runs(repo_path: Path, count: int = 3) -> list[str]:
    hashes = []
    for i in range(count):
        with Run(repo=repo_path, experiment="cat", system_tracking_interval=None) as run:
            run["hparams"] = {"lr": 0.1 * (i + 1), "i": i}
            for step in range(50):
                run.track(step * 0.5, name="loss", step=step, context={"subset": "train"})
        hashes.append(run.hash)
    return hashes


AIM_CORE = Path(sys.executable).parent / "aim-core"


def _aim_core(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(AIM_CORE), *args], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def _reindex(repo_path: Path) -> subprocess.CompletedProcess:
    return _aim_core("reindex", "--repo", str(repo_path))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "zeroed", "deleted", "empty"])
def test_a_damaged_catalog_names_reindex_which_rebuilds_it(repo_path, damage):
    hashes = _make_runs(repo_path)
    with Run(repo=repo_path) as archived:
        archived.archived = True
    close_idle()
    index = repo_path / ".aim_core" / "index.sqlite"
    size = index.stat().st_size
    if damage == "truncated":
        with open(index, "r+b") as f:
            f.truncate(size // 2 or 100)
    elif damage == "garbage":
        index.write_bytes(os.urandom(size))
    elif damage == "zeroed":
        index.write_bytes(b"\0" * size)
    elif damage == "empty":  # a sync tool, an interrupted copy, `> index.sqlite`
        index.write_bytes(b"")
    else:
        index.unlink()
    with pytest.raises(CatalogDamagedError, match="aim-core reindex"):
        list(Repo(repo_path).iter_runs())
    with pytest.raises(CatalogDamagedError, match="aim-core reindex"):
        Run(repo=repo_path, system_tracking_interval=None)  # never a fresh catalog hiding runs
    if damage == "empty":
        assert index.stat().st_size == 0  # nothing was written into it
    listing = _aim_core("runs", "ls", "--repo", str(repo_path))
    assert listing.returncode == 1 and "aim-core reindex" in listing.stderr
    done = _reindex(repo_path)
    assert done.returncode == 0, done.stderr
    assert "4 run(s)" in done.stdout
    repo = Repo(repo_path)
    assert repo.query_runs("run.hparams.lr > 0.15").hashes() == hashes[1:]
    assert repo.query_runs("run.archived").hashes() == [archived.hash]
    assert [m.count for m in repo.query_metrics('metric.name == "loss"')] == [50, 50, 50]
    with Run(repo=repo_path) as new:  # new runs work after a reindex
        new.track(1.0, name="loss", context={"subset": "train"})
    assert len(Repo(repo_path).query_runs("")) == 4


def test_reindex_lists_damaged_run_files_as_corrupted_and_the_mark_clears(repo_path):
    good, bad = _make_runs(repo_path, 2)
    bad_file = repo_path / ".aim_core" / "runs" / f"{bad}.sqlite"
    saved = bad_file.read_bytes()
    bad_file.write_bytes(saved[:100] + os.urandom(len(saved) - 100))
    done = _reindex(repo_path)
    assert done.returncode == 0 and bad in done.stderr
    repo = Repo(repo_path)
    assert {r.hash: r.status for r in repo.iter_runs()} == {good: "finished", bad: "corrupted"}
    bad_file.write_bytes(saved)  # restored from a backup
    assert repo.status_of(bad, None) == "finished"
    assert not repo.catalog.get(bad).get("corrupted")
    assert repo.query_runs("").hashes() == [good, bad]


def test_a_read_error_is_not_corruption(repo_path):
    (run_hash,) = _make_runs(repo_path, 1)
    code = textwrap.dedent("""
        import resource, sys
        from aim_core import Repo
        from aim_core.errors import RunUnavailableError
        repo = Repo(sys.argv[1])
        resource.setrlimit(resource.RLIMIT_NOFILE, (12, 12))
        keep = []
        try:
            while True:  # no file descriptor left
                keep.append(open(sys.argv[1] + "/.aim_core/index.sqlite", "rb"))
        except OSError:
            pass
        try:
            repo.get_run(sys.argv[2]).get_metric("loss", {"subset": "train"}).values
        except RunUnavailableError as exc:
            print("UNAVAILABLE", exc)
    """)
    out = subprocess.run([sys.executable, "-c", code, str(repo_path), run_hash],
                         capture_output=True, text=True, timeout=60)
    assert "UNAVAILABLE" in out.stdout, out.stdout + out.stderr
    repo = Repo(repo_path)
    assert not repo.catalog.get(run_hash).get("corrupted")
    assert repo.get_run(run_hash).status == "finished"


def test_a_newer_format_is_reported_as_such(repo_path):
    (run_hash,) = _make_runs(repo_path, 1)
    path = repo_path / ".aim_core" / "runs" / f"{run_hash}.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("UPDATE run SET value = '99' WHERE key = 'format'")
    conn.commit()
    conn.close()
    with pytest.raises(NewerFormatError, match="newer aim-core"):
        Repo(repo_path).get_run(run_hash)
    with pytest.raises(NewerFormatError):
        Run(run_hash, repo=repo_path)
    assert not Repo(repo_path).catalog.get(run_hash).get("corrupted")


def _tree(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _reader_checks(repo_path: Path) -> dict:
    """List, query, read points and run `aim-core runs ls` on a repo."""
    repo = Repo(repo_path)
    runs = {r.hash: r.status for r in repo.iter_runs()}
    values = {h: repo.get_run(h).get_metric("loss", {"subset": "train"}).values.tolist()
              for h in runs}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli_main(["runs", "ls", "--repo", str(repo_path), "--format", "json"])
    return {"runs": runs, "matched": repo.query_runs("run.hparams.lr > 0.15").hashes(),
            "values": values, "metrics": [m.count for m in repo.query_metrics(
                'metric.name == "loss"')], "code": code, "listed": len(json.loads(out.getvalue()))}


def _read_as_nobody(repo_path: Path, checks=_reader_checks) -> dict:
    """Run the reader checks in a forked child that switched to the user ``nobody``."""
    scratch = tempfile.mkdtemp(prefix="aim-core-nobody-")  # a TMPDIR the user can write
    os.chmod(scratch, 0o1777)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the running interpreter needs no access to its own install any more
        os.close(read)
        tempfile.tempdir = scratch
        try:
            os.setgid(65534)
            os.setuid(65534)
            result = json.dumps(checks(repo_path))
        except BaseException as exc:
            result = json.dumps({"error": repr(exc)})
        os.write(write, result.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        text = pipe.read()
    os.waitpid(pid, 0)
    shutil.rmtree(scratch)
    return json.loads(text)


@pytest.mark.parametrize("how", ["chmod", "other-uid"])
def test_a_read_only_repo_can_be_listed_queried_and_read(repo_path, how):
    as_root = os.geteuid() == 0
    if how == "other-uid" and not as_root:
        pytest.skip("switching to another user needs root")
    hashes = _make_runs(repo_path)
    close_idle()
    copy = Path(tempfile.mkdtemp(prefix="aim-core-readonly-"))  # reachable by another user
    copy.chmod(0o755)
    shutil.copytree(repo_path / ".aim_core", copy / ".aim_core")
    if how != "bind-mount":
        for path in [copy, *copy.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
    before = _tree(copy)
    try:  # root ignores file modes: it reads as the user nobody
        found = _read_as_nobody(copy) if as_root else _reader_checks(copy)
        after = _tree(copy)
    finally:
        for path in [copy, *copy.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
        shutil.rmtree(copy)
    assert "error" not in found, found
    assert found["runs"] == {h: "finished" for h in hashes}
    assert found["matched"] == hashes[1:] and found["metrics"] == [50, 50, 50]
    assert found["values"][hashes[0]] == [s * 0.5 for s in range(50)]
    assert found["code"] == 0 and found["listed"] == 3
    assert after == before  # the readers wrote nothing


KILLED_WRITER = textwrap.dedent("""
    import os, sys
    from aim_core import Run
    quiet = {"system_tracking_interval": None, "capture_terminal_logs": False}
    for i in range(3):
        with Run(repo=sys.argv[1], **quiet) as run:
            run["i"] = i
            run.track(float(i), name="loss")
    run = Run(repo=sys.argv[1], flush_interval=3600, **quiet)
    for step in range(20):
        run.track(step * 0.5, name="loss", step=step)
    run.flush()  # committed to the run's WAL, never checkpointed
    print(run.hash, flush=True)
    os.kill(os.getpid(), 9)  # the catalog's WAL is left behind too
""")

def _wal_checks(repo_path) -> dict:
    """What a reader sees of the killed writer's repo (also run as a script, below)."""
    from aim_core import Repo

    repo = Repo(repo_path)
    runs = {r.hash: r.status for r in repo.iter_runs()}
    values = {h: repo.get_run(h).get_metric("loss").values.tolist() for h in runs}
    return {"runs": runs, "values": values, "matched": len(repo.query_runs("run.i >= 1"))}


WAL_READER = (f"import json, sys\n{textwrap.dedent(inspect.getsource(_wal_checks))}\n"
              "print(json.dumps(_wal_checks(sys.argv[1])))\n")


def _read_on_a_read_only_bind_mount(repo_path: Path) -> dict | None:
    """The reader checks on a read-only bind mount of ``repo_path`` (root ignores chmod but
    not a read-only mount); None where mounting is not permitted."""
    if shutil.which("unshare") is None:
        return None
    folder = shlex.quote(str(repo_path))
    shell = (f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} && "
             f"exec {shlex.quote(sys.executable)} -c {shlex.quote(WAL_READER)} {folder}")
    for unshare in (["unshare", "-m"], ["unshare", "-rm"]):
        done = subprocess.run([*unshare, "sh", "-c", shell], capture_output=True, text=True,
                              timeout=120)
        if done.returncode == 0:
            return json.loads(done.stdout)
        if "mount" not in done.stderr and "unshare" not in done.stderr:
            return {"error": done.stderr[-2000:]}
    return None


def _no_temp_copy_checks(repo_path) -> dict:
    """Where not even a private copy can be made, the reader says so instead of hiding runs."""
    from aim_core.errors import RunUnavailableError

    tempfile.tempdir = str(repo_path)  # as read-only as the repo
    try:
        list(Repo(repo_path).iter_runs())
    except RunUnavailableError as exc:
        return {"raised": str(exc)}
    finally:
        tempfile.tempdir = None
    return {"raised": ""}


@pytest.mark.parametrize("shm", ["shm-removed", "shm-kept"])
@pytest.mark.parametrize("how", ["chmod", "bind-mount", "no-temp-copy"])
def test_a_read_only_copy_of_a_killed_writers_repo_shows_its_wal(repo_path, how, shm):
    out = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(repo_path)],
                         capture_output=True, text=True, timeout=120)
    crashed = out.stdout.strip()
    assert crashed, out.stderr
    copy = Path(tempfile.mkdtemp(prefix="aim-core-readonly-"))  # reachable by another user
    copy.chmod(0o755)
    shutil.copytree(repo_path / ".aim_core", copy / ".aim_core")
    assert (copy / ".aim_core" / "index.sqlite-wal").stat().st_size > 0
    assert (copy / ".aim_core" / "runs" / f"{crashed}.sqlite-wal").stat().st_size > 0
    if shm == "shm-removed":  # backup tools often skip *-shm
        for side in copy.rglob("*-shm"):
            side.unlink()
    if how != "bind-mount":
        for path in [copy, *copy.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
    before = _tree(copy)
    try:
        if how == "bind-mount":
            found = _read_on_a_read_only_bind_mount(copy)
        else:
            checks = _wal_checks if how == "chmod" else _no_temp_copy_checks
            # root ignores file modes: it reads as the user nobody
            found = _read_as_nobody(copy, checks) if os.geteuid() == 0 else checks(copy)
        after = _tree(copy)
    finally:
        for path in [copy, *copy.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
        shutil.rmtree(copy)
    if found is None:
        pytest.skip("cannot make a read-only bind mount here (needs unshare and mount rights)")
    assert "error" not in found, found
    if how == "no-temp-copy":  # with its -shm kept, SQLite reads the WAL in place
        if shm == "shm-removed":
            assert "cannot be read in place" in found["raised"] and "TMPDIR" in found["raised"]
        else:
            assert found["raised"] == ""
        return
    assert len(found["runs"]) == 4 and found["runs"][crashed] == "crashed"
    assert sorted(found["runs"].values()) == ["crashed", "finished", "finished", "finished"]
    assert found["values"][crashed] == [step * 0.5 for step in range(20)]
    assert found["matched"] == 2
    assert after == before  # the readers wrote nothing


def test_a_chunk_failing_its_checks_marks_the_run_until_it_reads_cleanly(repo_path):
    from aim_core.errors import RunCorruptedError

    (run_hash,) = _make_runs(repo_path, 1)
    path = repo_path / ".aim_core" / "runs" / f"{run_hash}.sqlite"
    conn = sqlite3.connect(path)
    key, blob = conn.execute("SELECT key, value FROM run WHERE key LIKE 'chunk/%'").fetchone()
    damaged = blob[:20] + bytes([blob[20] ^ 0xFF]) + blob[21:]
    conn.execute("UPDATE run SET value = ? WHERE key = ?", (damaged, key))
    conn.commit()
    repo = Repo(repo_path)
    with pytest.raises(RunCorruptedError, match="damaged"):
        repo.get_run(run_hash).get_metric("loss", {"subset": "train"}).values.tolist()
    assert repo.catalog.get(run_hash)["corrupted"] is True
    with pytest.warns(UserWarning, match="damaged"):
        assert repo.query_runs("").hashes() == []  # skipped, with a warning
    conn.execute("UPDATE run SET value = ? WHERE key = ?", (blob, key))
    conn.commit()
    conn.close()
    assert repo.status_of(run_hash, None) == "finished"
    assert repo.query_runs("").hashes() == [run_hash]
