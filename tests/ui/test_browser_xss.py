"""A repo crafted by an attacker (HTML and script in names, params, contexts, and in the
catalog's counts, values, times and status) shown on every page: no script runs, no element
is injected, and the markup shows as text."""

from __future__ import annotations

import pytest
from browser_support import open_page, quote, start_server, stop_server
from crafted_repo import METRIC, NAME, make_crafted_repo
from playwright.sync_api import Page

CONTEXT = "<img src=x onerror=\\\"window.__xss='context'\\\">"  # as JSON writes it
METRIC_KEY = METRIC + ' {"subset":"' + CONTEXT + '"}'

CHECK = """() => ({
    xss: window.__xss === undefined ? null : String(window.__xss),
    imgs: document.querySelectorAll('img, iframe, object, embed, svg image').length,
    scripts: [...document.scripts].map(s => s.getAttribute('src')),
    handlers: [...document.querySelectorAll('*')].filter(e => [...e.attributes]
        .some(a => a.name.startsWith('on'))).map(e => e.tagName),
    text: document.body.innerText,
    svg: [...document.querySelectorAll('svg text')].map(t => t.textContent).join('\\n'),
})"""


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("crafted")
    run_hash = make_crafted_repo(path)
    proc, url = start_server(path)
    yield url, run_hash
    stop_server(proc)


def inspect(page: Page) -> dict:
    page.wait_for_timeout(300)  # an injected onerror would fire by now
    found = page.evaluate(CHECK)
    assert found["xss"] is None, f"script ran: {found['xss']}"
    assert found["imgs"] == 0 and not found["handlers"]
    assert all(src and src.startswith(("/static/", "/vendor/")) for src in found["scripts"])
    for shown in (found["text"], found["svg"]):  # shown as written, not escaped twice
        assert "&lt;" not in shown and "&#" not in shown and "&quot;" not in shown
    return found


def hover_first_point(page: Page, selector: str) -> None:
    box = page.locator(f"{selector} .nsewdrag").first.bounding_box()
    for fraction in (0.02, 0.25, 0.5, 0.75, 0.98):
        page.mouse.move(box["x"] + box["width"] * fraction, box["y"] + box["height"] / 2)
        page.wait_for_timeout(50)


def test_runs_page_shows_crafted_values_as_text(page, crafted):
    url, _ = crafted
    key = quote("<img src=x onerror=\"window.__xss='key'\">")
    open_page(page, f"{url}?param={key}&param=hparams.note&metric={quote(METRIC_KEY)}")
    found = inspect(page)
    for text in (NAME, "<script>window.__xss='exp'</script>", "window.__xss='status'",
                 "window.__xss='param'", "window.__xss='key'", "window.__xss='created'"):
        assert text in found["text"], text
    page.click("#columns summary")
    assert "window.__xss='ckey'" in inspect(page)["text"]


def test_run_page_shows_crafted_values_as_text(page, crafted):
    url, run_hash = crafted
    open_page(page, f"{url}runs/{run_hash}")
    hover_first_point(page, "#charts .chart-box")
    found = inspect(page)
    for where in ("name", "description", "tag", "param", "key", "count", "last", "min", "max",
                  "last_step", "context", "metric", "status"):
        assert f"window.__xss='{where}'" in found["text"], where
    assert "window.__xss='metric'" in found["text"]


def test_metrics_page_legends_hovers_and_titles_are_text(page, crafted):
    url, _ = crafted
    open_page(page, url + "metrics?color=run.name&style=metric.context&chart=run.hparams.note"
              "&agg=mean&band=minmax")
    hover_first_point(page, "#charts .chart-box")
    page.click("#group-color summary")
    found = inspect(page)
    assert NAME in found["text"] and "window.__xss='context'" in found["text"]
    assert "window.__xss='param'" in found["text"]  # chart titles
    page.evaluate("() => Plotly.relayout(document.querySelector('.chart'), {showlegend: true})")
    assert "window.__xss=" in inspect(page)["svg"]


def test_params_scatters_and_compare_show_crafted_values_as_text(page, crafted):
    url, run_hash = crafted
    metric = quote("m:" + METRIC_KEY)
    key = quote("p:<img src=x onerror=\"window.__xss='key'\">")
    open_page(page, f"{url}params?dims=p:hparams.note&dims={key}&dims={metric}")
    found = inspect(page)
    assert "window.__xss='param'" in found["svg"] and "window.__xss='key'" in found["svg"]
    assert NAME in found["text"]
    open_page(page, f"{url}scatters?x=p:hparams.note&y={metric}&color=p:hparams.note")
    hover_first_point(page, "#scatter")
    found = inspect(page)
    assert "window.__xss='param'" in found["svg"]
    open_page(page, f"{url}compare?run={run_hash}")
    found = inspect(page)
    assert NAME in found["text"] and "window.__xss='param'" in found["text"]
