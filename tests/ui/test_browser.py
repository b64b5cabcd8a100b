"""End-to-end: the real server (`serve`) driven by headless Chromium through Playwright:
the Runs page, the Metrics page's basics, the Run page, writes, the README screenshot."""

from __future__ import annotations

import os
import shutil
import struct
import zlib
from pathlib import Path

import pytest
from browser_support import api, open_page, quote, row_hashes, start_server, stop_server
from playwright.sync_api import Page, expect
from ui_repo_data import make_repo, train

from aim_core import Repo, Run

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"
TEXTS = "cells => cells.map(c => c.textContent)"


def after_render(page: Page, action) -> None:
    """Do `action` and wait until the page has redrawn."""
    before = int(page.evaluate("Number(document.body.dataset.renders || 0)"))
    action()
    page.wait_for_function(f"Number(document.body.dataset.renders || 0) > {before}")


def test_runs_table_matches_api_and_sorts(page, server):
    open_page(page, server)
    expected = api(server, "/api/runs")["runs"]
    assert row_hashes(page) == [r["hash"] for r in expected] and len(expected) == 5
    assert page.locator("#count").inner_text() == "5 runs"
    header = page.locator("#runs thead").inner_text()
    for column in ("hash", "name", "experiment", "status", "created", "duration", "hparams.lr"):
        assert column in header
    after_render(page, lambda: page.click('th[data-key="name"]'))
    names = page.eval_on_selector_all("#runs tbody tr td:nth-child(3)", TEXTS)
    assert names == sorted(names) and "sort=name" in page.url and "dir=asc" in page.url
    after_render(page, lambda: page.click('th[data-key="name"]'))
    names = page.eval_on_selector_all("#runs tbody tr td:nth-child(3)", TEXTS)
    assert names == sorted(names, reverse=True)


def test_runs_table_pages(page, server):
    expected = [r["hash"] for r in api(server, "/api/runs", sort="name", dir="asc")["runs"]]
    open_page(page, server + "?sort=name&dir=asc&size=2")
    assert row_hashes(page) == expected[:2]
    assert page.locator("#range").inner_text() == "1–2 of 5"
    after_render(page, lambda: page.click("#next"))
    assert row_hashes(page) == expected[2:4] and "page=1" in page.url
    after_render(page, lambda: page.click("#next"))
    assert row_hashes(page) == expected[4:] and page.locator("#next").is_disabled()


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


def test_metrics_page_draws_a_chart_per_metric(page, server):
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
    return page.evaluate("""() => document.querySelector('.chart-box[data-metric="loss"] .chart')
        .data.map(t => ({name: t.name, color: t.line.color, dash: t.line.dash, x: Array.from(t.x),
                         y: Array.from(t.y), meta: t.meta}))""")


def set_group(page: Page, mode: str, fields: list[str]) -> None:
    """Tick exactly `fields` in the colour/style/chart grouping panel."""
    page.click(f"#group-{mode} summary")
    for box in page.locator(f"#group-{mode} input[type=checkbox]").all():
        wanted = box.get_attribute("value") in fields
        if box.is_checked() != wanted:
            after_render(page, lambda b=box, w=wanted: b.set_checked(w))
    page.click(f"#group-{mode} summary")


def test_metrics_colour_style_axis_smoothing_log(page, server):
    open_page(page, server + "metrics?q=" + quote('metric.name == "loss"'))
    assert page.eval_on_selector_all(".chart-box", "b => b.length") == 1
    by_run = loss_traces(page)
    assert len(by_run) == 7 and len({t["color"] for t in by_run}) == 4  # one colour per run
    assert {t["dash"] for t in by_run} == {"solid", "dash"}  # line style by context
    set_group(page, "color", ["metric.context.subset"])
    colours: dict[str, set] = {}
    for t in loss_traces(page):
        colours.setdefault(t["meta"]["context"]["subset"], set()).add(t["color"])
    assert all(len(c) == 1 for c in colours.values()) and len({*map(min, colours.values())}) == 2
    legend = page.locator("#legend .entry[data-kind=color]").all_inner_texts()
    assert legend == ["subset=train", "subset=val"]
    set_group(page, "color", ["run.hparams.lr"])
    assert {t["name"] for t in loss_traces(page)} == {f"hparams.lr={v}" for v in
                                                    ("0.01", "0.05", "0.02", "0.03")}
    after_render(page, lambda: page.select_option("#x-axis", "epoch"))
    assert any(t["x"] == [0, 1, 2, 3, 4] for t in loss_traces(page))
    raw = loss_traces(page)
    page.fill("#smooth", "0.9")
    after_render(page, lambda: page.dispatch_event("#smooth", "input"))
    smoothed = loss_traces(page)
    assert smoothed[0]["y"][0] == raw[0]["y"][0] and smoothed[0]["y"][5] != raw[0]["y"][5]
    after_render(page, lambda: page.check("#log"))
    layout = page.evaluate("() => document.querySelector('.chart').layout.yaxis.type")
    assert layout == "log"


def test_metrics_search_error_is_inline(page, server):
    open_page(page, server + "metrics?q=" + quote("metric.name ==="))
    expect(page.locator("#error")).to_be_visible()
    assert "column" in page.locator("#error").inner_text()


def test_run_page_shows_params_sequences_and_charts_by_context(page, server, live_repo):
    run_hash = live_repo[1]["sgd-small"]
    open_page(page, f"{server}runs/{run_hash}")
    assert page.locator("h1").inner_text() == "sgd-small"
    tree = page.locator("#params").inner_text()
    assert "hparams" in tree and "lr: 0.01" in tree and "name: \"sgd\"" in tree
    system = len([s for s in api(server, f"/api/runs/{run_hash}")["sequences"]
                  if s["name"].startswith("__system__")])
    assert system >= 4 and page.locator("#sequences tbody tr").count() == 3 + system
    sections = page.eval_on_selector_all("#charts section h2", "h => h.map(x => x.textContent)")
    assert sections == ["subset=train", "subset=val"]  # system metrics have their own section
    assert page.locator("#charts .chart-box").count() == 3
    page.select_option("#x-axis", "epoch")
    page.wait_for_function(
        "() => document.querySelector('.chart').layout.xaxis.title.text === 'epoch'")


def test_run_page_of_a_live_run_extends_its_charts(page, server, live_repo):
    _, hashes, live = live_repo
    open_page(page, f"{server}runs/{hashes['live']}")
    count = page.evaluate("() => document.querySelector('.chart').data[0].x.length")
    live.track(0.001, name="loss", step=500, context={"subset": "train"})
    live.flush()
    page.wait_for_function(
        f"() => document.querySelector('.chart').data[0].x.length > {count}", timeout=10_000)
    assert page.evaluate("() => Array.from(document.querySelector('.chart').data[0].x)")[-1] == 500


def test_unknown_run_page_says_so(page, server):
    open_page(page, f"{server}runs/0123456789abcdef01234567")
    expect(page.locator("#error")).to_contain_text("No run")


@pytest.fixture(scope="module")
def sweep_url(tmp_path_factory: pytest.TempPathFactory):
    """A small sweep: three learning rates, four seeds each, trained for real."""
    path = tmp_path_factory.mktemp("screenshot_sweep")
    Repo(path, init=True)
    for lr in (0.005, 0.01, 0.03):
        for seed in range(4):
            with Run(repo=str(path), experiment="sweep") as run:
                run.name = f"lr{lr}-seed{seed}"
                run["hparams"] = {"lr": lr, "seed": seed}
                train(run, lr, seed)
    proc, url = start_server(path)
    yield url
    stop_server(proc)


def test_screenshot_shows_grouped_aggregated_curves(browser, sweep_url, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 620})
    view = ("metrics?q=" + quote('metric.name == "loss"') + "&color=run.hparams.lr&style="
            "&chart=metric.context.subset&agg=mean&band=std&log=1")
    open_page(page, sweep_url + view)
    chart = page.evaluate("() => document.querySelector('.chart').data.map(t => t.meta.kind)")
    assert chart.count("mean") == 3 and chart.count("raw") == 12
    legend = page.locator("#legend .entry[data-kind=color]").all_inner_texts()
    assert legend == ["hparams.lr=0.005", "hparams.lr=0.01", "hparams.lr=0.03"]
    page.evaluate("document.activeElement.blur()")
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=False)
    page.close()
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
        tab.check(f'input.pick[data-hash="{hashes["sgd-wide"]}"]')
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
