"""Fixtures for the dashboard tests: a shared trained repo and a read-only API client."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from ui_repo_data import make_repo  # noqa: E402


@pytest.fixture(scope="session")
def ui_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A read-only shared repo: (path, {run name: hash})."""
    path = tmp_path_factory.mktemp("ui_repo")
    return path, make_repo(path)


@pytest.fixture(autouse=True)
def _isolated_default_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing a test does may land in the checkout."""
    monkeypatch.setenv("AIM_CORE_REPO", str(tmp_path))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def client(ui_repo):
    """A read-only API client over the shared repo."""
    from starlette.testclient import TestClient

    from aim_core.ui.app import create_app

    with TestClient(create_app(ui_repo[0]), base_url="http://127.0.0.1") as test_client:
        yield test_client
