"""Params, Scatters and Compare pages and the runs CSV, in headless Chromium."""

from __future__ import annotations

import csv
import io

from browser_support import api, open_page, quote, row_hashes
from playwright.sync_api import Page, expect
from test_browser import after_render

VAL_LOSS = 'loss {"subset":"val"}'
PARAMS_VIEW = "params?dims=p:hparams.lr&dims=" + quote("m:" + VAL_LOSS)


def download_csv(page: Page, selector: str) -> list[dict]:
    with page.expect_download() as info:
        page.click(selector)
    with open(info.value.path(), encoding="utf-8") as file:
        return list(csv.DictReader(io.StringIO(file.read())))


def test_brushing_a_parallel_axis_narrows_the_table(page, browser, server, live_repo):
    hashes = live_repo[1]
    open_page(page, server + PARAMS_VIEW)
    trained = {hashes[n] for n in ("sgd-small", "sgd-large", "sgd-wide")}
    assert set(row_hashes(page, "#table tbody tr")) == trained  # the others lack val loss
    dims = page.evaluate("() => document.getElementById('parcoords').data[0].dimensions"
                         ".map(d => d.label)")
    assert dims == ["hparams.lr", "loss (subset=val)"]
    axis = page.locator("#parcoords .axis-brush").first.bounding_box()
    x = axis["x"] + axis["width"] / 2
    top, height = axis["y"], axis["height"]
    # lr runs from 0.05 (top) to 0.01 (bottom): brush from 0.025 down past the bottom
    start = top + height * (0.05 - 0.025) / 0.04
    page.mouse.move(x, start)
    page.mouse.down()
    page.mouse.move(x, start + 40, steps=4)
    after_render(page, lambda: (page.mouse.move(x, top + height + 8, steps=4), page.mouse.up()))
    assert set(row_hashes(page, "#table tbody tr")) == {hashes["sgd-small"], hashes["sgd-wide"]}
    assert page.locator("#shown").inner_text() == "2 of 3"
    assert "brush=0" in page.url
    rows = download_csv(page, "#csv")
    assert [r["hash"] for r in rows] == row_hashes(page, "#table tbody tr")
    assert {float(r["hparams.lr"]) for r in rows} == {0.01, 0.02}
    other = browser.new_page()
    try:
        open_page(other, page.url)  # the brush is part of the URL
        assert set(row_hashes(other, "#table tbody tr")) == {hashes["sgd-small"],
                                                              hashes["sgd-wide"]}
    finally:
        other.close()
    after_render(page, lambda: page.click("#clear"))
    assert set(row_hashes(page, "#table tbody tr")) == trained


def test_parallel_coordinates_colour_by_a_metric_and_categories(page, server):
    open_page(page, server + PARAMS_VIEW + "&dims=p:hparams.optimizer.name")
    trace = page.evaluate("() => { const t = document.getElementById('parcoords').data[0];"
                          "return {color: Array.from(t.line.color), text: t.dimensions[2].ticktext,"
                          "scale: t.line.showscale}; }")
    rows = {r["hash"]: r for r in api(server, "/api/runs", metric=VAL_LOSS, limit=100)["runs"]}
    table = row_hashes(page, "#table tbody tr")
    assert trace["scale"] and sorted(trace["color"]) == sorted(
        rows[h]["metrics"][VAL_LOSS] for h in table)
    assert trace["text"] == ["sgd"]


def point_position(page: Page, index: int) -> tuple[float, float]:
    return tuple(page.evaluate(f"""() => {{
        const gd = document.getElementById('scatter'), l = gd._fullLayout, t = gd.data[0];
        const box = gd.getBoundingClientRect();
        return [box.left + l.xaxis._offset + l.xaxis.l2p(t.x[{index}]),
                box.top + l.yaxis._offset + l.yaxis.l2p(t.y[{index}])]; }}"""))


def test_scatter_hover_shows_the_run_and_click_opens_it(page, server, live_repo):
    open_page(page, server + "scatters?x=p:hparams.lr&y=" + quote("m:" + VAL_LOSS))
    data = page.evaluate("() => { const t = document.getElementById('scatter').data[0];"
                         "return {x: Array.from(t.x), hashes: t.customdata.map(c => c[0])}; }")
    assert sorted(data["x"]) == [0.01, 0.02, 0.05]
    index = data["hashes"].index(live_repo[1]["sgd-large"])
    x, y = point_position(page, index)
    page.mouse.move(x, y)
    expect(page.locator(".hoverlayer .hovertext")).to_contain_text("sgd-large")
    page.mouse.click(x, y)
    page.wait_for_url(f"**/runs/{live_repo[1]['sgd-large']}")
    page.wait_for_selector('body[data-ready="1"]', state="attached")
    assert page.locator("h1").inner_text() == "sgd-large"


def test_scatter_axes_are_chosen_from_params_and_metrics(page, server):
    open_page(page, server + "scatters")
    options = page.eval_on_selector_all("#x option", "o => o.map(x => x.value)")
    assert "p:hparams.lr" in options and "m:" + VAL_LOSS in options
    after_render(page, lambda: page.select_option("#x", "p:hparams.lr"))
    after_render(page, lambda: page.select_option("#y", "p:hparams.batch_size"))
    after_render(page, lambda: page.select_option("#color", "p:hparams.lr"))
    xs = page.evaluate("() => Array.from(document.getElementById('scatter').data[0].x)")
    assert sorted(xs) == [0.01, 0.02, 0.03, 0.05]  # runs with both values, live included
    rows = download_csv(page, "#csv")
    assert sorted(float(r["hparams.lr"]) for r in rows) == sorted(xs)


def test_compare_selected_runs(page, server, live_repo):
    hashes = live_repo[1]
    open_page(page, server)
    page.check(f'input.pick[data-hash="{hashes["sgd-small"]}"]')
    after_render(page, lambda: page.check(f'input.pick[data-hash="{hashes["sgd-large"]}"]'))
    assert page.locator("#compare").inner_text() == "Compare (2)"
    page.click("#compare")
    page.wait_for_url("**/compare?**")
    page.wait_for_selector('body[data-ready="1"]', state="attached")
    heads = page.eval_on_selector_all("#params thead th", "h => h.map(x => x.textContent.trim())")
    assert heads == ["param", "sgd-small", "sgd-large"]
    diff = page.eval_on_selector_all("#params tbody tr.diff", "r => r.map(x => x.dataset.key)")
    assert diff == ["hparams.lr"]
    cells = page.locator('#params tbody tr[data-key="hparams.lr"] td').all_inner_texts()
    assert cells == ["hparams.lr", "0.01", "0.05"]
    boxes = page.eval_on_selector_all("#charts .chart-box", "b => b.map(x => x.dataset.name)")
    assert boxes == ['acc {"subset":"val"}', 'loss {"subset":"train"}', 'loss {"subset":"val"}']
    traces = page.evaluate("""() => [...document.querySelectorAll('#charts .chart')].map(c =>
        c.data.map(t => ({run: t.meta.run, y: Array.from(t.y)})))""")
    for box, drawn in zip(boxes, traces, strict=True):
        name, context = box.split(" ", 1)
        for trace in drawn:
            (series,) = api(server, "/api/series", run=trace["run"], name=name,
                            context=context)["series"]
            assert trace["y"] == series["values"]
        assert [t["run"] for t in drawn] == [hashes["sgd-small"], hashes["sgd-large"]]
    after_render(page, lambda: page.check("#diff"))
    assert page.locator("#params tbody tr").count() == 1 and "diff=1" in page.url
    rows = download_csv(page, "#csv")
    assert rows == [{"param": "hparams.lr", hashes["sgd-small"]: "0.01",
                     hashes["sgd-large"]: "0.05"}]


def test_runs_csv_matches_the_api(page, server):
    open_page(page, server + "?sort=name&dir=asc")
    rows = download_csv(page, "#csv")
    shown = page.evaluate("() => new URL(document.getElementById('csv').href).search")
    assert "sort=name" in shown
    body = api(server, "/api/runs", sort="name", dir="asc", auto="1")
    assert [r["hash"] for r in rows] == [r["hash"] for r in body["runs"]] == row_hashes(page)
    for row, run in zip(rows, body["runs"], strict=True):
        assert row["name"] == run["name"] and row["experiment"] == run["experiment"]
        for key in body["shown"]["params"]:
            value = run["params"][key]
            assert row[key] == ("" if value is None else str(value))
        for key in body["shown"]["metrics"]:
            value = run["metrics"][key]
            assert row[key] == ("" if value is None else repr(value))


def test_chart_csvs_quote_text_a_spreadsheet_would_run(page, server):
    open_page(page, server)
    text = page.evaluate("""() => Dash.csv(["name", "value"],
        [["=HYPERLINK(1)", -0.5], ["@SUM(A1)", "+1"], ["ok, fine", {"a": 1}]])""")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1:] == [["'=HYPERLINK(1)", "-0.5"], ["'@SUM(A1)", "'+1"],
                        ["ok, fine", '{"a":1}']]
