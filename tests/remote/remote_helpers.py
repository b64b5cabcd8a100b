"""Helpers for the remote tests: a real `aim-core server` process and client processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
CLIENT = HERE / "track_client.py"
SERVER_MAIN = "import sys; from aim_core.cli import main; sys.exit(main())"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`aim-core server` in a subprocess: start, kill -9, restart on the same port."""

    def __init__(self, repo: Path, port: int, args: tuple[str, ...] = ()) -> None:
        self.repo, self.port, self.args = repo, port, args
        self.proc: subprocess.Popen | None = None
        self.url = f"aim://127.0.0.1:{port}"
        self.http = f"http://127.0.0.1:{port}"

    def start(self) -> ServerProcess:
        """Start the server and wait until it answers."""
        log = open(self.repo.parent / f"server-{self.port}.log", "a")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER_MAIN, "server", "--repo", str(self.repo),
             "--port", str(self.port), *self.args],
            stdout=subprocess.PIPE, stderr=log, text=True)
        log.close()  # the server keeps its own descriptor: its log never fills a pipe
        line = self.proc.stdout.readline()
        assert "aim-core server" in line, line + self.log()
        wait_until_up(self.http)
        return self

    def log(self) -> str:
        """What the server wrote to stderr."""
        path = self.repo.parent / f"server-{self.port}.log"
        return path.read_text() if path.exists() else ""

    def kill(self) -> None:
        """kill -9 the server."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        """SIGTERM the server and wait for it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_until_up(http: str, timeout: float = 30.0) -> None:
    """Poll the server until a TCP connection succeeds."""
    host, port = http.rsplit(":", 1)
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", int(port)), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"server at {http} did not come up")


def start_client(*args: str, env: dict | None = None) -> subprocess.Popen:
    """Run track_client.py with ``args``; its stdout is JSON lines."""
    return subprocess.Popen([sys.executable, str(CLIENT), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def read_json_line(proc: subprocess.Popen) -> dict:
    """The next JSON line a client printed."""
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(f"client ended: {proc.stderr.read()}")
    return json.loads(line)
