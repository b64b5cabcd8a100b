"""Fixtures for the dashboard tests: a shared trained repo, an API client, and for the
browser tests one headless Chromium and one live server shared by all test files.

Debian's chromium is used through `executable_path` (never `playwright install`). Without it
the browser tests skip, except in CI (`CI=true`) where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import urllib.parse
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from browser_support import start_server, stop_server  # noqa: E402
from ui_repo_data import make_repo  # noqa: E402

from aim_core import Run  # noqa: E402

CHROMIUM = os.environ.get("AIM_CORE_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
LAUNCH_ARGS = [
    "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run",
]
# Chromium logs every 4xx answer; bad queries (400) and unknown runs (404) are tested on purpose.
EXPECTED = re.compile(r"Failed to load resource: .* status of 40[04]")


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


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the browser tests must run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def live_repo(tmp_path_factory: pytest.TempPathFactory):
    """A trained repo plus one run left open (status running) for the live refresh."""
    path = tmp_path_factory.mktemp("browser_repo")
    hashes = make_repo(path)
    live = Run(repo=str(path), experiment="live", flush_interval=0.2)
    live.name = "live"
    live["hparams"] = {"lr": 0.03, "batch_size": 64}
    for step in range(20):
        live.track(1.0 / (step + 1), name="loss", step=step, context={"subset": "train"})
    live.flush()
    hashes["live"] = live.hash
    yield path, hashes, live
    live.close()


@pytest.fixture(scope="session")
def server(live_repo):
    """The URL of a dashboard over `live_repo`, served by a child process."""
    proc, url = start_server(live_repo[0])
    yield url
    stop_server(proc)
    assert proc.returncode is not None


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory):
    """One headless Chromium for every browser test."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - depends on the environment
        _unavailable("playwright is not installed (pip install playwright)")
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    home = tmp_path_factory.mktemp("chromium_home")
    env = {**os.environ, "XDG_CONFIG_HOME": str(home), "XDG_CACHE_HOME": str(home)}
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, env=env)
        yield chromium
        chromium.close()


def local(url: str) -> bool:
    """True for a request that stays on 127.0.0.1 (data: and our own blob: URLs too)."""
    if url.startswith("data:"):
        return True
    if url.startswith("blob:"):
        url = url[5:]
    return urllib.parse.urlsplit(url).hostname == "127.0.0.1"


@pytest.fixture
def page(browser):
    """A fresh page; after the test, no page errors and no request off 127.0.0.1."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    tab = context.new_page()
    requests, errors = [], []
    tab.on("request", lambda r: requests.append(r.url))
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.on("console", lambda m: m.type == "error" and not EXPECTED.search(m.text)
           and errors.append(m.text))
    tab.on("response", lambda r: r.status >= 500 and errors.append(f"{r.status} {r.url}"))
    tab.on("dialog", lambda d: d.accept())
    yield tab
    context.close()
    offsite = [u for u in requests if not local(u)]
    assert not offsite, f"requests left 127.0.0.1: {offsite}"
    assert not errors, f"page errors: {errors}"
