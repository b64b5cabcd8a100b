"""Tokens on every endpoint, refused bodies, safe listening and TLS."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zlib

import httpx
import pytest
from remote_helpers import SERVER_MAIN, free_port

from aim_core import Repo, Run
from aim_core.remote.protocol import Op, Sequence, columns_of, encode_batch
from aim_core.remote.server_storage import applied_points

TOKEN = "s3cret-token"


@pytest.fixture
def token_file(tmp_path):
    """A token file whose trailing newline is not part of the token."""
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


def endpoints(run_hash: str) -> list[tuple[str, str]]:
    """Every route the server has (API, dashboard pages, static files, unknown paths)."""
    api = "/remote/v1"
    return [
        ("GET", f"{api}/info"), ("GET", f"{api}/runs"), ("GET", f"{api}/runs/{run_hash}"),
        ("GET", f"{api}/runs/{run_hash}/series?name=x&context={{}}"),
        ("GET", f"{api}/runs/{run_hash}/state"), ("GET", f"{api}/query/runs?q="),
        ("GET", f"{api}/query/metrics?q="), ("POST", f"{api}/runs/{run_hash}/batches"),
        ("POST", f"{api}/runs/{run_hash}/heartbeat?session=abc"),
        ("GET", "/"), ("GET", "/metrics"), ("GET", f"/runs/{run_hash}"), ("GET", "/api/runs"),
        ("GET", f"/api/runs/{run_hash}"), ("GET", "/api/info"),
        ("GET", f"/api/runs/{run_hash}/logs"), ("GET", f"/api/runs/{run_hash}/objects"),
        ("GET", "/vendor/plotly.min.js"), ("DELETE", f"/api/runs/{run_hash}"),
        ("GET", "/no/such/page"),
    ]


def test_every_endpoint_needs_the_token(server_factory, token_file, monkeypatch):
    server = server_factory("--token-file", str(token_file), "--ui")
    monkeypatch.setenv("AIM_CORE_TOKEN", TOKEN)
    run = Run(repo=server.url)
    run.track(1.0, name="x")
    run.close()
    with httpx.Client(base_url=server.http) as http:
        for method, path in endpoints(run.hash):
            for headers in ({}, {"Authorization": "Bearer wrong"},
                            {"Authorization": f"Bearer {TOKEN}x"}, {"Cookie": "aim_core_token=no"}):
                answer = http.request(method, path, headers=headers)
                assert answer.status_code == 401, (method, path, headers, answer.status_code)
                assert "token" in answer.json()["error"]
            good = http.request(method, path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert good.status_code != 401, (method, path)
    assert Repo(server.url).get_run(run.hash).get_metric("x").values.tolist() == [1.0]


def test_a_browser_gets_a_cookie_from_token_in_the_url(server_factory, token_file):
    server = server_factory("--token-file", str(token_file), "--ui")
    with httpx.Client(base_url=server.http) as browser:
        assert browser.get("/").status_code == 401
        first = browser.get(f"/metrics?token={TOKEN}&q=x")
        assert first.status_code == 303 and first.headers["location"] == "/metrics?q=x"
        assert "HttpOnly" in first.headers["set-cookie"]
        assert browser.get("/metrics").status_code == 200  # the cookie now rides along
        assert browser.get("/api/runs").status_code == 200
    with httpx.Client() as raw:  # a path that a browser reads as another host: no way out
        answer = raw.get(f"{server.http}//evil.example/x?token={TOKEN}")
        assert answer.status_code == 303 and answer.headers["location"] == "/evil.example/x"


def test_clients_send_the_token_from_env_or_argument(server_factory, token_file, monkeypatch):
    server = server_factory("--token-file", str(token_file))
    monkeypatch.setenv("AIM_CORE_REMOTE_CLOSE_TIMEOUT", "1")
    with Run(repo=server.url, token=TOKEN) as run:
        run.track(1.0, name="x")
    with pytest.raises(Exception, match="refused the token"):
        Repo(server.url).get_run(run.hash)
    assert Repo(server.url, token=TOKEN).get_run(run.hash).status == "finished"
    denied = Run(repo=server.url, token="wrong")
    denied.track(2.0, name="x")
    with pytest.warns(RuntimeWarning, match="refused the token"):
        denied.close()  # training is not stopped: the points wait in the spool
    monkeypatch.setenv("AIM_CORE_TOKEN", TOKEN)
    assert len(list(Repo(server.url).iter_runs())) == 1


def test_white_space_around_a_token_is_not_part_of_it(server_factory, tmp_path, monkeypatch):
    padded = tmp_path / "padded-token"
    padded.write_text(f" {TOKEN}\t \r\n")
    server = server_factory("--token-file", str(padded))
    monkeypatch.setenv("AIM_CORE_REMOTE_CLOSE_TIMEOUT", "20")
    monkeypatch.setenv("AIM_CORE_TOKEN", padded.read_text().rstrip("\n"))  # "$(cat file)"
    with Run(repo=server.url, system_tracking_interval=None) as run:
        run.track(1.0, name="x")
    assert Repo(server.url).get_run(run.hash).status == "finished"


def test_a_token_no_header_can_carry_is_refused_with_a_message(tmp_path):
    bad = tmp_path / "token"
    bad.write_text("s3cret-tökén\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", SERVER_MAIN, "server", "--repo",
                           str(tmp_path / "r"), "--port", str(free_port()), "--token-file",
                           str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "printable ASCII" in done.stderr


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_a_port_out_of_range_is_a_usage_error(tmp_path, port):
    done = subprocess.run([sys.executable, "-c", SERVER_MAIN, "server", "--repo",
                           str(tmp_path / "r"), "--port", port], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "is not a TCP port" in done.stderr, done.stderr


def test_non_loopback_host_needs_a_token_or_insecure(tmp_path, token_file):
    base = [sys.executable, "-c", SERVER_MAIN, "server", "--repo", str(tmp_path / "r"),
            "--host", "0.0.0.0", "--port", str(free_port())]
    refused = subprocess.run(base, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "refusing to listen on 0.0.0.0 without a token" in refused.stderr
    assert "--insecure" in refused.stderr
    for extra in (["--insecure"], ["--token-file", str(token_file)]):
        proc = subprocess.Popen(base + extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        try:
            assert "aim-core server" in proc.stdout.readline()
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def batch(run_hash: str, session: str = "s1", seq: int = 1, ops=None) -> bytes:
    """A valid batch creating a run with three points."""
    points = columns_of([(0, 1.0, 0.0, 1.0), (1, 2.0, 0.0, 2.0), (2, 3.0, 0.0, 3.0)])
    ops = ops if ops is not None else [
        Op("create", {"props": {"creation_time": 1.0, "experiment": "x"}, "heartbeat": 10.0}),
        Op("points", sequences=[Sequence("loss", {}, "metric", points)])]
    return encode_batch(run_hash, session, seq, ops, 10.0)


def raw_body(header: bytes, rest: bytes = b"") -> bytes:
    """A body with the batch marker and an arbitrary header."""
    return zlib.compress(b"ACB1" + len(header).to_bytes(4, "little") + header + rest)


MALFORMED = {
    "not zlib": b"hello",
    "zlib, no marker": zlib.compress(b"hello world"),
    "header not JSON": raw_body(b"{not json"),
    "header too long": zlib.compress(b"ACB1" + (10**6).to_bytes(4, "little") + b"{}"),
    "bad version": raw_body(b'{"v": 9, "run": "r1", "session": "s", "seq": 1, "ops": []}'),
    "bad seq": raw_body(b'{"v": 1, "run": "r1", "session": "s", "seq": 0, "ops": []}'),
    "unknown op": raw_body(b'{"v": 1, "run": "r1", "session": "s", "seq": 5, '
                           b'"ops": [{"op": "drop_table"}]}'),
    "points missing": raw_body(b'{"v": 1, "run": "r1", "session": "s", "seq": 5, "ops": '
                               b'[{"op": "points", "sequences": [{"name": "x", "n": 4}]}]}'),
    "extra bytes": raw_body(b'{"v": 1, "run": "r1", "session": "s", "seq": 5, "ops": []}',
                            b"xx"),
    "bad context": raw_body(b'{"v": 1, "run": "r1", "session": "s", "seq": 5, "ops": [{"op": '
                            b'"points", "sequences": [{"name": "x", "n": 0, "context": '
                            b'{"a": [1]}}]}]}'),
    "NaN context": raw_body(b'{"v": 1, "run": "r1", "session": "s", "seq": 5, "ops": [{"op": '
                            b'"points", "sequences": [{"name": "x", "n": 0, "context": '
                            b'{"a": NaN}}]}]}'),
    "empty name": raw_body(b'{"v": 1, "run": "r1", "session": "s", "seq": 5, "ops": [{"op": '
                           b'"points", "sequences": [{"name": "", "n": 0}]}]}'),
    "op after close": raw_body(b'{"v": 1, "run": "r1", "session": "s", "seq": 5, "ops": [{"op": '
                               b'"close", "status": "finished"}, {"op": "meta", "params": {}}]}'),
    "server-owned prop": raw_body(b'{"v": 1, "run": "r1", "session": "s", "seq": 5, "ops": [{"op":'
                                  b' "meta", "params": {}, "props": {"status": "finished"}}]}'),
    "other run": batch("r2", session="s9"),
    "deeply nested header": raw_body(b'{"v": 1, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    "int param beyond int64": raw_body(b'{"v": 1, "run": "r1", "session": "s", "seq": 5, "ops": '
                                       b'[{"op": "meta", "params": {"a": 1180591620717411303424},'
                                       b' "props": {}}]}'),
    "params nested too deep": raw_body(b'{"v": 1, "run": "r1", "session": "s", "seq": 5, "ops": '
                                       b'[{"op": "meta", "params": ' + b'{"a": ' * 200 + b"1" +
                                       b"}" * 200 + b', "props": {}}]}'),
    "zip bomb": zlib.compress(b"ACB1" + b"\0" * (200 << 20)),
}


def test_malformed_and_oversized_bodies_are_refused_and_change_nothing(server_factory):
    server = server_factory("--max-body-mb", "1")
    url = f"{server.http}/remote/v1/runs/r1/batches"
    with httpx.Client() as http:
        assert http.post(url, content=batch("r1")).json() == {"applied": True, "seq": 1}
        before = Repo(server.repo).get_run("r1").get_metric("loss").values.tolist()
        for what, body in MALFORMED.items():
            answer = http.post(url, content=body)
            assert answer.status_code == 400, (what, answer.status_code, answer.text)
            assert answer.json()["error"], what
        big = b"\0" * (2 << 20)
        assert http.post(url, content=big).status_code == 413
        assert http.post(url, content=iter([big[:1 << 20], big[1 << 20:]])).status_code == 413
        no_run = batch("r3", ops=[Op("meta", {"params": {"a": 1}, "props": {}})])
        assert http.post(f"{server.http}/remote/v1/runs/r3/batches",
                         content=no_run).status_code == 404
        for bad in ("..", "a.b", "x" * 65, "a%2Fb"):
            answer = http.post(f"{server.http}/remote/v1/runs/{bad}/batches", content=b"")
            assert answer.status_code in (400, 404, 405), bad
            answer = http.get(f"{server.http}/remote/v1/runs/{bad}")
            assert answer.status_code in (307, 400, 404), bad  # ".." is resolved by the client
        assert http.post(url, content=batch("r1")).json() == {"applied": False, "seq": 1}
    repo = Repo(server.repo)
    assert repo.list_runs() == ["r1"] and applied_points(repo, "r1") == 3
    assert repo.get_run("r1").get_metric("loss").values.tolist() == before == [1.0, 2.0, 3.0]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls(server_factory, tmp_path, monkeypatch):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    server = server_factory("--ssl-keyfile", str(key), "--ssl-certfile", str(cert))
    monkeypatch.setenv("AIM_CORE_CA_BUNDLE", str(cert))
    url = f"https://127.0.0.1:{server.port}"
    with Run(repo=url) as run:
        run.track(5.0, name="x")
    assert Repo(url).get_run(run.hash).get_metric("x").values.tolist() == [5.0]
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{server.http}/remote/v1/info", timeout=5)  # plain HTTP is not served


def test_without_a_token_only_this_machine_s_names_are_answered(server_factory):
    server = server_factory("--ui", "--allowed-host", "tracker.lan")
    with httpx.Client(base_url=server.http) as http:
        for path in ("/remote/v1/runs", "/remote/v1/info", "/api/runs", "/"):
            assert http.get(path, headers={"Host": "evil.example"}).status_code == 403, path
            assert http.get(path, headers={"Host": "tracker.lan:53800"}).status_code == 200
            assert http.get(path).status_code == 200  # 127.0.0.1
        refused = http.post("/remote/v1/runs/r1/batches", content=batch("r1"),
                            headers={"Host": "evil.example"})
        assert refused.status_code == 403 and "--allowed-host" in refused.text
    assert Repo(server.repo).list_runs() == []
