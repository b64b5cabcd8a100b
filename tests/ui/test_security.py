"""Hostile input to the dashboard: foreign Host headers, bad arguments, crafted repos, slow
queries. Servers run as real processes where the behaviour depends on the network."""

from __future__ import annotations

import http.client
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from crafted_repo import NAME, make_crafted_repo
from starlette.testclient import TestClient
from ui_repo_data import make_repo

from aim_core.ui.app import create_app
from aim_core.ui.hosts import host_name

PATHS = ("/", "/metrics", "/api/runs", "/api/info", "/static/app.css", "/vendor/plotly.min.js")


@pytest.mark.parametrize("host", ["evil.example", "evil.example:43800", "localhost.evil.example",
                                  "127.0.0.1.nip.io", ""])
def test_a_foreign_host_is_refused(ui_repo, host):
    with TestClient(create_app(ui_repo[0]), base_url="http://127.0.0.1") as client:
        for path in PATHS:
            resp = client.get(path, headers={"host": host})
            assert resp.status_code == 403, path
            assert "DNS rebinding" in resp.text and "--allowed-host" in resp.text
        assert client.get("/api/runs", headers={"host": host}).json()["error"]


@pytest.mark.parametrize("host", ["127.0.0.1:43800", "localhost", "LOCALHOST.:80", "[::1]:8080",
                                  "10.1.2.3:43800", "[fe80::1]", "dash.example", "Dash.Example:9"])
def test_loopback_ip_addresses_and_allowed_names_are_served(ui_repo, host):
    app = create_app(ui_repo[0], allowed_hosts=["dash.example"])
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.get("/api/info", headers={"host": host}).status_code == 200


def test_host_names_are_parsed_like_browsers_send_them():
    assert host_name("[::1]:43800") == "::1"
    assert host_name("Example.COM.:80") == "example.com"
    assert host_name("::1") == "::1"


def start(repo: Path, *args: str) -> tuple[subprocess.Popen, int]:
    """`aim-core up` on a free port; returns the process and the port."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from aim_core.cli import main; sys.exit(main())",
         "up", "--repo", str(repo), "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(5):
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", proc.stdout.readline())
        if match:
            return proc, int(match.group(1))
    proc.kill()
    raise AssertionError(f"aim-core up printed no URL: {proc.stderr.read()}")


def get(port: int, path: str, host: str | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", host or f"127.0.0.1:{port}")
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def test_aim_core_up_allowed_host_option(ui_repo):
    proc, port = start(ui_repo[0], "--allowed-host", "dash.example",
                       "--allowed-host", "other.example")
    try:
        assert get(port, "/api/info")[0] == 200
        assert get(port, "/api/info", f"localhost:{port}")[0] == 200
        assert get(port, "/api/info", "dash.example")[0] == 200
        assert get(port, "/", f"other.example:{port}")[0] == 200
        status, body = get(port, "/api/runs", f"attacker.example:{port}")
        assert status == 403 and "attacker.example" in json.loads(body)["error"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


BAD_ARGUMENTS = [
    ("/api/series", {"run": "x", "points": "2"}),
    ("/api/series", {"run": "x", "points": "1e3"}),
    ("/api/series", {"run": "x", "points": "99999"}),
    ("/api/metrics", {"points": "2"}),
    ("/api/metrics", {"points": "-5"}),
    ("/api/metrics", {"points": "many"}),
    ("/api/metrics", {"limit": "-1"}),
    ("/api/metrics", {"limit": "0"}),
    ("/api/metrics", {"limit": "100000"}),
    ("/api/metrics", {"x": "stepz"}),
    ("/api/metrics", {"x": "metric:"}),
    ("/api/metrics", {"agg": "max"}),
    ("/api/metrics", {"band": "iqr"}),
    ("/api/metrics", {"agg": "mean", "raw": "maybe"}),
    ("/api/metrics", {"group": "hparams.lr"}),
    ("/api/metrics", {"group": [f"run.p{i}" for i in range(20)]}),
    ("/api/runs", {"limit": "-1"}),
    ("/api/runs", {"limit": "1.5"}),
    ("/api/runs", {"offset": "-3"}),
    ("/api/runs", {"sort": "__class__"}),
    ("/api/runs", {"dir": "sideways"}),
    ("/api/runs", {"hash": ["a"] * 1001}),
    ("/api/runs.csv", {"sort": "nope"}),
    ("/api/compare", {}),
    ("/api/compare", {"run": [f"h{i}" for i in range(51)]}),
]


@pytest.mark.parametrize("path, params", BAD_ARGUMENTS)
def test_bad_arguments_get_400_with_a_message(client, path, params):
    resp = client.get(path, params=params)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]


DEEP = "[" * 5000 + "]" * 5000


@pytest.mark.parametrize("context", [DEEP, '{"a": ' + DEEP + "}", '{"a": [1]}', '{"a": {}}'])
def test_a_context_that_is_not_a_flat_json_object_gets_400(client, ui_repo, context):
    run_hash = ui_repo[1]["long"]
    for path, params in [("/api/series", {"run": run_hash}),
                         (f"/api/runs/{run_hash}/objects", {"kind": "image", "name": "img"})]:
        resp = client.get(path, params={**params, "context": context})
        assert resp.status_code == 400, (path, resp.text)
        assert "context" in resp.json()["error"]


def test_a_crafted_catalog_is_served_as_data(tmp_path):
    run_hash = make_crafted_repo(tmp_path)
    paths = ["/api/runs?auto=1", "/api/runs?sort=creation_time", "/api/runs?sort=duration",
             "/api/runs?sort=status", f"/api/runs/{run_hash}", f"/api/series?run={run_hash}",
             "/api/metrics?agg=mean&band=std&group=run.name&group=metric.context",
             f"/api/compare?run={run_hash}", "/api/runs.csv?auto=1"]
    with TestClient(create_app(tmp_path), base_url="http://127.0.0.1") as client:
        for path in paths:
            assert client.get(path).status_code == 200, path
        row = next(r for r in client.get("/api/runs").json()["runs"] if r["hash"] == run_hash)
        assert row["name"] == NAME and row["duration"] is None


@pytest.fixture(scope="module")
def many_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The trained repo plus 5,000 copies of one run (catalog rows and hard-linked files)."""
    path = tmp_path_factory.mktemp("many_runs")
    hashes = make_repo(path)
    source = hashes["sgd-small"]
    runs = path / ".aim_core" / "runs"
    db = sqlite3.connect(path / ".aim_core" / "index.sqlite")
    try:
        (entry,) = db.execute("SELECT value FROM runs WHERE key = ?", (source,)).fetchone()
        with db:
            for i in range(5000):
                copy = f"copy{i:020d}"
                db.execute("INSERT INTO runs (key, value) VALUES (?, ?)", (copy, entry))
                os.link(runs / f"{source}.sqlite", runs / f"{copy}.sqlite")
    finally:
        db.close()
    return path, hashes


# Legal under every size limit (3 million characters per run) yet a few ms per run: seconds
# over 5,000 runs.
SLOW_QUERY = " + ".join(['("ab" * 500000).count("b")'] * 3) + " < 0"


def serve_in_process(repo: Path, seconds: float) -> tuple[subprocess.Popen, int]:
    code = ("import sys; from aim_core.ui.server import serve; "
            "serve(sys.argv[1], port=0, query_seconds=float(sys.argv[2]))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(repo), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    for _ in range(5):
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", proc.stdout.readline())
        if match:
            return proc, int(match.group(1))
    proc.kill()
    raise AssertionError("serve() printed no URL")


def test_a_slow_query_does_not_hold_up_other_requests(many_runs):
    proc, port = serve_in_process(many_runs[0], 120)
    try:
        slow: dict = {}
        worker = threading.Thread(target=lambda: slow.update(
            answer=get(port, "/api/runs?" + urlencode(q=SLOW_QUERY))))
        worker.start()
        time.sleep(0.3)
        for path in ("/api/info", "/api/runs?" + urlencode(q='run.name == "long"'),
                     f"/api/runs/{many_runs[1]['long']}", "/"):
            status, _ = get(port, path)
            assert status == 200 and worker.is_alive(), path  # answered while the slow one runs
        worker.join(120)
        assert slow["answer"][0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_query_over_the_time_budget_is_given_up(many_runs):
    proc, port = serve_in_process(many_runs[0], 0.5)
    try:
        started = time.monotonic()
        status, body = get(port, "/api/runs?" + urlencode(q=SLOW_QUERY))
        message = json.loads(body)["error"]
        # 503 when the dashboard stops waiting; 400 when the evaluator (given timeout=)
        # stops the query itself first
        assert (status, "No answer within 0.5 s" in message) == (503, True) or (
            status == 400 and "time budget" in message), (status, message)
        assert time.monotonic() - started < 30
        assert get(port, "/api/info")[0] == 200
    finally:
        proc.kill()
        proc.wait(timeout=30)


def urlencode(**params: str) -> str:
    from urllib.parse import urlencode as encode

    return encode(params)
