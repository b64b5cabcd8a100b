"""Fixtures for the core tests: a fresh repo folder per test, nothing written to the checkout."""

from __future__ import annotations

import signal

import pytest

from aim_core.storage import flusher


@pytest.fixture(scope="session", autouse=True)
def ctrl_c_reaches_children():
    """Let the Ctrl-C tests' children get KeyboardInterrupt even when pytest was started in
    the background, where the shell ignores SIGINT and every child would inherit that."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield


@pytest.fixture
def repo_path(tmp_path, monkeypatch):
    """An empty folder used as the repo and as the working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AIM_CORE_REPO", raising=False)
    monkeypatch.setenv("AIM_CORE_FLUSH_INTERVAL", "0.2")
    yield tmp_path
    flusher.close_all()
