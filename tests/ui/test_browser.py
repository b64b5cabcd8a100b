"""End-to-end: the real server (`serve`) driven by headless Chromium through Playwright.

Debian's chromium is used through `executable_path` (never `playwright install`). Without it
the tests skip, except in CI (`CI=true`) where they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

import pytest
from ui_repo_data import make_repo

from aim_core import Run

CHROMIUM = os.environ.get("AIM_CORE_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
LAUNCH_ARGS = [
    "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"
READY = 'body[data-ready="1"]'
# Chromium logs every 4xx answer; bad queries (400) and unknown runs (404) are tested on purpose.
EXPECTED = re.compile(r"Failed to load resource: .* status of 40[04]")


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the browser tests must run)")
    pytest.skip(reason)


try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None


@pytest.fixture(scope="module")
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


def start_server(repo: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    """Run `serve(repo, port=0)` in a child process; return it and the URL it printed."""
    code = ("import sys; from aim_core.ui.server import serve; "
            "serve(sys.argv[1], port=0, allow_writes='--allow-writes' in sys.argv)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(repo), *extra],
                            stdout=subprocess.PIPE, text=True, cwd=repo)
    for _ in range(5):
        line = proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        if match:
            return proc, match.group(1)
    proc.kill()
    raise AssertionError("serve() did not print its URL")


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM stops the server promptly."""
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server(live_repo):
    proc, url = start_server(live_repo[0])
    yield url
    stop_server(proc)
    assert proc.returncode is not None


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    if sync_playwright is None:
        _unavailable("playwright is not installed (pip install playwright)")
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    home = tmp_path_factory.mktemp("chromium_home")
    env = {**os.environ, "XDG_CONFIG_HOME": str(home), "XDG_CACHE_HOME": str(home)}
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, env=env)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh page; after the test, no page errors and no request off 127.0.0.1."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
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
    offsite = [u for u in requests
               if not u.startswith("data:") and urllib.parse.urlsplit(u).hostname != "127.0.0.1"]
    assert not offsite, f"requests left 127.0.0.1: {offsite}"
    assert not errors, f"page errors: {errors}"


def api(url: str, path: str, **params) -> dict:
    query = urllib.parse.urlencode(params, doseq=True)
    with urllib.request.urlopen(f"{url}{path.lstrip('/')}?{query}") as resp:
        return json.load(resp)


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector(READY, state="attached", timeout=15_000)


def row_hashes(page: Page) -> list[str]:
    return page.eval_on_selector_all("#runs tbody tr", "rows => rows.map(r => r.dataset.hash)")


TEXTS = "cells => cells.map(c => c.textContent)"


def test_runs_table_matches_api_and_sorts(page, server):
    open_page(page, server)
    expected = api(server, "/api/runs")["runs"]
    assert row_hashes(page) == [r["hash"] for r in expected] and len(expected) == 5
    assert page.locator("#count").inner_text() == "5 runs"
    header = page.locator("#runs thead").inner_text()
    for column in ("hash", "name", "experiment", "status", "created", "duration", "hparams.lr"):
        assert column in header
    page.click('th[data-key="name"]')
    names = page.eval_on_selector_all("#runs tbody tr td:nth-child(2)", TEXTS)
    assert names == sorted(names)
    page.click('th[data-key="name"]')
    names = page.eval_on_selector_all("#runs tbody tr td:nth-child(2)", TEXTS)
    assert names == sorted(names, reverse=True)


def test_runs_search_narrows_and_shows_errors_inline(page, server, live_repo):
    open_page(page, server)
    page.fill("#q", 'run.experiment == "baseline"')
    page.press("#q", "Enter")
    expect(page.locator("#runs tbody tr")).to_have_count(2)
    hashes = live_repo[1]
    assert sorted(row_hashes(page)) == sorted([hashes["sgd-small"], hashes["sgd-large"]])
    page.fill("#q", "run.hparams.lr >")
    page.press("#q", "Enter")
    expect(page.locator("#error")).to_be_visible()
    assert "column 17" in page.locator("#error").inner_text()
    assert page.locator("#runs tbody tr").count() == 2  # the last good result stays


def test_runs_page_refreshes_active_runs(page, server, live_repo):
    _, hashes, live = live_repo
    open_page(page, server)
    row = page.locator(f'#runs tbody tr[data-hash="{hashes["live"]}"]')
    expect(row.locator(".status")).to_have_text("running")
    live.track(123.456, name="loss", step=100, context={"subset": "train"})
    live.flush()
    expect(row).to_contain_text("123.46", timeout=8_000)


def test_metrics_page_draws_a_chart_per_metric(page, server, live_repo):
    open_page(page, server + "metrics")
    names = page.eval_on_selector_all(".chart-box", "b => b.map(x => x.dataset.name)")
    assert names == ["acc", "gaps", "loss", "wave"]
    search = api(server, "/api/metrics", q="")
    traces = page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('.chart-box')]"
        ".map(b => [b.dataset.name, b.querySelector('.chart').data.length]))")
    per_name = {}
    for s in search["series"]:
        per_name[s["name"]] = per_name.get(s["name"], 0) + 1
    assert traces == per_name and traces["loss"] == 7  # 3 runs x train/val + live train


def loss_traces(page: Page) -> list[dict]:
    return page.evaluate("""() => document.querySelector('.chart-box[data-name="loss"] .chart')
        .data.map(t => ({name: t.name, color: t.line.color, x: Array.from(t.x),
                         y: Array.from(t.y), legend: t.showlegend}))""")


def test_metrics_search_colour_axis_smoothing_log(page, server):
    open_page(page, server + "metrics?q=" + urllib.parse.quote('metric.name == "loss"'))
    assert page.eval_on_selector_all(".chart-box", "b => b.length") == 1
    by_run = loss_traces(page)
    assert len(by_run) == 7 and len({t["color"] for t in by_run}) == 4  # one colour per run
    page.select_option("#color-by", "context:subset")
    by_subset = loss_traces(page)
    colours = {}
    for t in by_subset:
        colours.setdefault(t["name"], set()).add(t["color"])
    assert set(colours) == {"subset=train", "subset=val"}
    assert all(len(c) == 1 for c in colours.values()) and len({*map(min, colours.values())}) == 2
    page.select_option("#color-by", "param:hparams.lr")
    assert {t["name"] for t in loss_traces(page)} == {f"hparams.lr={v}" for v in
                                                    ("0.01", "0.05", "0.02", "0.03")}
    page.select_option("#x-axis", "epoch")
    val = [t for t in loss_traces(page) if "val" in t["name"] or True]
    assert any(t["x"] == [0, 1, 2, 3, 4] for t in val)
    raw = loss_traces(page)
    page.fill("#smooth", "0.9")
    page.dispatch_event("#smooth", "input")
    smoothed = loss_traces(page)
    assert smoothed[0]["y"][0] == raw[0]["y"][0] and smoothed[0]["y"][5] != raw[0]["y"][5]
    page.check("#log")
    layout = page.evaluate("() => document.querySelector('.chart').layout.yaxis.type")
    assert layout == "log"


def test_metrics_search_error_is_inline(page, server):
    open_page(page, server + "metrics?q=" + urllib.parse.quote("metric.name ==="))
    expect(page.locator("#error")).to_be_visible()
    assert "column" in page.locator("#error").inner_text()


def test_run_page_shows_params_sequences_and_charts_by_context(page, server, live_repo):
    run_hash = live_repo[1]["sgd-small"]
    open_page(page, f"{server}runs/{run_hash}")
    assert page.locator("h1").inner_text() == "sgd-small"
    tree = page.locator("#params").inner_text()
    assert "hparams" in tree and "lr: 0.01" in tree and "name: \"sgd\"" in tree
    assert page.locator("#sequences tbody tr").count() == 3
    sections = page.eval_on_selector_all("#charts section h2", "h => h.map(x => x.textContent)")
    assert sections == ["subset=train", "subset=val"]
    assert page.locator("#charts .chart-box").count() == 3
    page.select_option("#x-axis", "epoch")
    page.wait_for_function(
        "() => document.querySelector('.chart').layout.xaxis.title.text === 'epoch'")


def test_unknown_run_page_says_so(page, server):
    open_page(page, f"{server}runs/0123456789abcdef01234567")
    expect(page.locator("#error")).to_contain_text("No run")


def test_screenshot_is_not_blank(page, server, tmp_path):
    query = 'metric.name in ("loss", "acc") and run.experiment != "live"'
    open_page(page, server + "metrics?q=" + urllib.parse.quote(query))
    page.select_option("#color-by", "param:hparams.lr")
    page.fill("#smooth", "0.3")
    page.dispatch_event("#smooth", "input")
    page.evaluate("document.activeElement.blur()")
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=False)
    assert distinct_bytes(shot.read_bytes()) > 50
    if os.environ.get("AIM_CORE_WRITE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)


def test_writes_ask_for_confirmation(browser, tmp_path):
    hashes = make_repo(tmp_path / "repo")
    proc, url = start_server(tmp_path / "repo", "--allow-writes")
    try:
        tab = browser.new_page()
        dialogs = []
        tab.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
        open_page(tab, url)
        tab.check(f'input[data-hash="{hashes["sgd-wide"]}"]')
        tab.click('button[data-action="delete"]')
        expect(tab.locator("#runs tbody tr")).to_have_count(3)
        assert dialogs and "delete 1 run" in dialogs[0]
        tab.close()
    finally:
        stop_server(proc)


def distinct_bytes(png: bytes) -> int:
    """How many distinct byte values the decoded pixel rows hold (1-2 for a blank image)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        if kind == b"IDAT":
            idat += png[pos + 8:pos + 8 + length]
        pos += 12 + length
    return len(set(zlib.decompress(idat)))
