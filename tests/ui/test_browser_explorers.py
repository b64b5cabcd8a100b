"""The Metrics explorer in headless Chromium: grouping into charts, colours and styles,
aggregation checked against the repo, URL state, chart CSV, synced zoom, outliers, live."""

from __future__ import annotations

import csv
import io
import urllib.parse

import numpy as np
import pytest
from browser_support import api, open_page, quote
from playwright.sync_api import Page
from test_browser import after_render, set_group

from aim_core import Repo

LOSS = quote('metric.name == "loss"')
TRACES = """() => [...document.querySelectorAll('#charts .chart-box')].map(b => ({
    title: b.dataset.name, metric: b.dataset.metric,
    traces: b.querySelector('.chart').data.map(t => ({
        name: t.name, color: t.line.color, dash: t.line.dash, meta: t.meta,
        x: Array.from(t.x), y: Array.from(t.y)}))}))"""


def charts(page: Page) -> list[dict]:
    return page.evaluate(TRACES)


def test_grouping_by_a_param_gives_one_chart_per_value(page, server):
    open_page(page, server + "metrics?q=" + LOSS)
    set_group(page, "chart", ["run.hparams.lr"])
    drawn = {c["title"]: c for c in charts(page)}
    search = api(server, "/api/metrics", q='metric.name == "loss"')
    expected: dict[str, int] = {}
    for s in search["series"]:
        lr = search["runs"][s["run"]]["params"]["hparams.lr"]
        expected[f"loss · hparams.lr={lr}"] = expected.get(f"loss · hparams.lr={lr}", 0) + 1
    assert {t: len(c["traces"]) for t, c in drawn.items()} == expected
    assert expected == {"loss · hparams.lr=0.01": 2, "loss · hparams.lr=0.02": 2,
                        "loss · hparams.lr=0.03": 1, "loss · hparams.lr=0.05": 2}
    assert list(drawn) == sorted(drawn)
    assert "chart=run.hparams.lr" in urllib.parse.unquote(page.url)


def test_mean_line_of_a_group_is_the_mean_of_its_runs(page, server, live_repo):
    query = quote('metric.name == "loss" and metric.context.subset == "train"')
    open_page(page, server + f"metrics?q={query}&color=run.experiment&style=")
    after_render(page, lambda: page.select_option("#agg", "mean"))
    (chart,) = charts(page)
    means = {t["meta"]["key"]["run.experiment"]: t for t in chart["traces"]
             if t["meta"]["kind"] == "mean"}
    assert set(means) == {"baseline", "wide", "live"}
    repo = Repo(live_repo[0])
    values = [repo.get_run(live_repo[1][n]).get_metric("loss", {"subset": "train"}).values
              for n in ("sgd-small", "sgd-large")]
    assert means["baseline"]["y"] == pytest.approx(np.mean(values, axis=0).tolist(), rel=1e-12)
    assert means["baseline"]["meta"]["members"] == 2
    raw = [t for t in chart["traces"] if t["meta"]["kind"] == "raw"]
    assert len(raw) == 4 and means["baseline"]["color"] == next(
        t["color"] for t in raw if t["meta"]["run"] == live_repo[1]["sgd-small"])
    after_render(page, lambda: page.select_option("#band", "minmax"))
    (chart,) = charts(page)
    lows = [t for t in chart["traces"] if t["meta"]["kind"] == "band-lo"
            and t["meta"]["key"]["run.experiment"] == "baseline"]
    assert lows[0]["y"] == pytest.approx(np.min(values, axis=0).tolist())
    after_render(page, lambda: page.uncheck("#raw"))
    kinds = {t["meta"]["kind"] for t in charts(page)[0]["traces"]}
    assert kinds == {"mean", "band-lo", "band-hi"}


def test_a_copied_url_reopens_the_same_view(page, browser, server):
    open_page(page, server + "metrics")
    page.fill("#q", 'metric.name in ("loss", "acc")')
    after_render(page, lambda: page.press("#q", "Enter"))
    set_group(page, "color", ["run.hparams.lr"])
    set_group(page, "chart", ["metric.context.subset"])
    after_render(page, lambda: page.select_option("#agg", "median"))
    after_render(page, lambda: page.select_option("#band", "std"))
    after_render(page, lambda: page.select_option("#x-axis", "epoch"))
    page.fill("#smooth", "0.5")
    after_render(page, lambda: page.dispatch_event("#smooth", "input"))
    after_render(page, lambda: page.check("#log"))
    after_render(page, lambda: page.check("#outliers"))
    view = charts(page)
    controls = "() => ['q','agg','band','x-axis','smooth','log','outliers'].map(id => {" \
               "const e = document.getElementById(id); return e.type === 'checkbox' ? " \
               "e.checked : e.value; })"
    before = page.evaluate(controls)
    legend = page.locator("#legend").inner_text()
    copied = page.url
    other = browser.new_page(viewport={"width": 1280, "height": 860})
    try:
        open_page(other, copied)
        assert other.evaluate(controls) == before
        assert charts(other) == view and other.locator("#legend").inner_text() == legend
    finally:
        other.close()
    assert len(view) == 3 and {c["title"] for c in view} == {
        "acc · subset=val", "loss · subset=train", "loss · subset=val"}


def test_chart_csv_matches_the_api(page, server):
    query = 'metric.name == "loss" and metric.context.subset == "val"'
    open_page(page, server + "metrics?q=" + quote(query))
    with page.expect_download() as info:
        page.click('.chart-box[data-metric="loss"] button.csv')
    with open(info.value.path(), encoding="utf-8") as file:
        rows = list(csv.DictReader(io.StringIO(file.read())))
    search = api(server, "/api/metrics", q=query)
    expected = [(s["run"], json_context(s["context"]), step, value) for s in search["series"]
                for step, value in zip(s["steps"], s["values"], strict=True)]
    got = [(r["run"], r["context"], int(r["step"]), float(r["value"])) for r in rows]
    assert sorted(got) == sorted(expected) and len(got) == 15
    assert {r["kind"] for r in rows} == {"raw"} and {r["metric"] for r in rows} == {"loss"}
    names = {s["run"]: search["runs"][s["run"]]["name"] for s in search["series"]}
    assert all(r["run_name"] == names[r["run"]] for r in rows)


def json_context(context: dict) -> str:
    import json

    return json.dumps(context, separators=(",", ":"))


def test_zoom_is_synced_across_charts(page, server):
    query = quote('metric.name == "loss" and run.experiment != "live"')
    open_page(page, server + f"metrics?q={query}&chart=metric.context.subset")
    boxes = page.locator("#charts .chart-box")
    assert boxes.count() == 2
    drag = boxes.nth(0).locator(".nsewdrag").first.bounding_box()
    y = drag["y"] + drag["height"] / 2
    page.mouse.move(drag["x"] + drag["width"] * 0.3, y)
    page.mouse.down()
    page.mouse.move(drag["x"] + drag["width"] * 0.45, y + 2, steps=5)
    page.mouse.move(drag["x"] + drag["width"] * 0.6, y + 3, steps=5)
    page.mouse.up()
    page.wait_for_function("""() => { const c = [...document.querySelectorAll('#charts .chart')];
        return !c[1].layout.xaxis.autorange && c[1].layout.xaxis.range; }""")
    ranges = page.evaluate("""() => [...document.querySelectorAll('#charts .chart')]
        .map(c => c.layout.xaxis.range.map(Number))""")
    assert ranges[0] == pytest.approx(ranges[1]) and 0 < ranges[0][0] < ranges[0][1] < 40
    assert "xr=" in page.url
    page.mouse.dblclick(drag["x"] + drag["width"] * 0.5, y)
    page.wait_for_function("""() => [...document.querySelectorAll('#charts .chart')]
        .every(c => c.layout.xaxis.autorange)""")


def test_ignoring_outliers_narrows_the_y_range(page, server):
    open_page(page, server + "metrics?q=" + quote('metric.name == "wave"'))
    full = page.evaluate("() => document.querySelector('.chart')._fullLayout.yaxis.range")
    assert full[1] > 2.1  # the spike at step 3333 is cos(3333 / 300) + 2 = 2.13
    after_render(page, lambda: page.check("#outliers"))
    narrow = page.evaluate("() => document.querySelector('.chart').layout.yaxis.range")
    assert narrow[1] < 1.3 and narrow[0] < -0.9
    assert "outliers=1" in page.url


def test_x_axis_another_metric_and_wall_time(page, server):
    query = quote('metric.name == "loss" and run.experiment == "baseline"')
    open_page(page, server + f"metrics?q={query}")
    after_render(page, lambda: page.select_option("#x-axis", "metric:acc"))
    search = api(server, "/api/metrics", q='metric.name == "loss" and run.experiment == '
                                           '"baseline"', x="metric:acc")
    (chart,) = charts(page)
    assert sorted(t["x"] for t in chart["traces"]) == sorted(s["x"] for s in search["series"])
    title = page.evaluate("() => document.querySelector('.chart').layout.xaxis.title.text")
    assert title == "acc"
    after_render(page, lambda: page.select_option("#x-axis", "wall"))
    assert page.evaluate("() => document.querySelector('.chart')._fullLayout.xaxis.type") == "date"


def test_charts_of_a_live_run_extend_without_reload(page, server, live_repo):
    _, hashes, live = live_repo
    open_page(page, server + "metrics?q=" + quote('run.name == "live"'))
    steps = charts(page)[0]["traces"][0]["x"]
    live.track(0.0005, name="loss", step=max(steps) + 7, context={"subset": "train"})
    live.flush()
    page.wait_for_function(f"""() => Array.from(document.querySelector('.chart').data[0].x)
        .includes({max(steps) + 7})""", timeout=10_000)
    assert page.locator("#refresh").inner_text().startswith("live")


@pytest.fixture(scope="module")
def sweep_server(tmp_path_factory: pytest.TempPathFactory):
    """A server over 48 small runs: enough lines for a chart to merge them."""
    from browser_support import start_server, stop_server

    from aim_core import Run

    path = tmp_path_factory.mktemp("sweep")
    Repo(path, init=True)
    for i in range(48):
        with Run(repo=str(path), experiment="sweep") as run:
            run.name = f"s{i:02d}"
            run["hparams"] = {"batch_size": [16, 32, 64][i % 3]}
            for step in range(20):
                run.track(1.0 / (step + 1 + i), name="loss", step=step)
    proc, url = start_server(path)
    yield url
    stop_server(proc)


def test_many_lines_share_a_trace_per_colour_and_keep_their_hover(page, sweep_server):
    open_page(page, sweep_server + "metrics?color=run.hparams.batch_size")
    (chart,) = charts(page)
    assert len(chart["traces"]) == 3  # one per batch size instead of 48
    search = api(sweep_server, "/api/metrics")
    for trace in chart["traces"]:
        assert trace["meta"]["merged"] == 16
        runs = trace["meta"]["runs"]
        expected = [v for h in runs for s in search["series"] if s["run"] == h
                    for v in [*s["values"], None]][:-1]
        assert trace["y"] == expected
    texts = page.evaluate("() => document.querySelector('.chart').data[0].text.slice(0, 2)")
    assert texts[0].startswith("s") and texts[0] == texts[1]
    with page.expect_download() as info:
        page.click("button.csv")
    with open(info.value.path(), encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 48 * 20 and len({r["run"] for r in rows}) == 48
