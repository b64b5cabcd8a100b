"""Fixtures for the remote tests: a real `aim-core server` process on a free port."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("httpx")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from remote_helpers import ServerProcess, free_port  # noqa: E402


@pytest.fixture(autouse=True)
def no_sender_left():
    """Stop the senders a test leaves behind (a run closed while its server was away keeps
    retrying by design), so that later tests of the session see no aim-core thread."""
    yield
    from aim_core.remote.sender import Sender

    for thread in threading.enumerate():
        if isinstance(thread, Sender):
            thread.stop()


@pytest.fixture
def client_env(tmp_path, monkeypatch):
    """Environment of this test's clients: a private spool, short heartbeats and timeouts."""
    env = {"AIM_CORE_SPOOL_DIR": str(tmp_path / "spool"), "AIM_CORE_HEARTBEAT_INTERVAL": "0.3",
           "AIM_CORE_REMOTE_CLOSE_TIMEOUT": "20", "AIM_CORE_FLUSH_INTERVAL": "0.2"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AIM_CORE_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    return env


@pytest.fixture
def server_factory(tmp_path, client_env):
    """Make servers over ``tmp_path/server_repo``; every one is stopped after the test."""
    started: list[ServerProcess] = []

    def make(*args: str, port: int | None = None, start: bool = True) -> ServerProcess:
        server = ServerProcess(tmp_path / "server_repo", port or free_port(), args)
        started.append(server)
        return server.start() if start else server

    yield make
    from aim_core.storage import flusher

    flusher.close_all()  # runs a test left open, while their server still answers
    for server in started:
        server.stop()


@pytest.fixture
def server(server_factory):
    """One running server without a token."""
    return server_factory()
