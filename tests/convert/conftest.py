"""Fixtures for the converter tests: a fresh target repo per test, nothing in the checkout."""

from __future__ import annotations

import pytest

from aim_core import Repo
from aim_core.storage import flusher


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """An empty aim-core repo to convert into; the working directory is a fresh folder."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("AIM_CORE_REPO", raising=False)
    yield Repo(tmp_path / "target", init=True)
    flusher.close_all()
