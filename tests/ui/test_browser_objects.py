"""The Images and Texts pages and the run page's object tabs, in real headless Chromium."""

from __future__ import annotations

import numpy as np
import pytest
from browser_support import api, open_page, quote, start_server, stop_server
from playwright.sync_api import Page, expect

from aim_core import Distribution, Figure, Image, Run, Text

XSS = "<img src=x onerror=\"document.body.dataset.pwned='1'\">"


def colour(step: int, subset: str) -> np.ndarray:
    """A 6x8 image whose red channel says the step and green channel the subset."""
    image = np.zeros((6, 8, 3), np.uint8)
    image[..., 0] = 40 * (step + 1)
    image[..., 1] = 200 if subset == "val" else 100
    return image


@pytest.fixture(scope="module")
def objects_server(tmp_path_factory):
    """A dashboard over two runs with images, texts, a distribution and a figure."""
    go = pytest.importorskip("plotly.graph_objects")
    path = tmp_path_factory.mktemp("objects_repo")
    hashes = {}
    for name, lr in (("small", 1e-4), ("large", 1e-2)):
        with Run(repo=str(path), experiment="objects") as run:
            run.name = name
            run["hparams"] = {"lr": lr}
            for step in range(3):
                for subset in ("train", "val"):
                    run.track([Image(colour(step, subset), caption=f"{subset} {step} #{i}")
                               for i in range(2)], name="samples", step=step,
                              context={"subset": subset})
                run.track(Text(f"{name} says {step}"), name="notes", step=step)
                run.track(Distribution(np.random.default_rng(step).normal(step, 1, 500)),
                          name="weights", step=step, context={"type": "data"})
            run.track(Image(colour(0, "val"), caption=XSS), name="tricky")
            run.track(Figure(go.Figure(go.Bar(x=["a", "b"], y=[3, 5]))), name="bars")
            run.log_warning("lr may be high", lr=lr)
            hashes[name] = run.hash
    proc, url = start_server(path)
    yield url, hashes
    stop_server(proc)


def after_render(page: Page, action) -> None:
    before = int(page.evaluate("Number(document.body.dataset.renders || 0)"))
    action()
    page.wait_for_function(f"Number(document.body.dataset.renders || 0) > {before}")


def thumbnails(page: Page) -> list[dict]:
    return page.eval_on_selector_all(".thumb img", "imgs => imgs.map(i => ({src: i.src, "
                                     "alt: i.alt}))")


def test_images_page_shows_the_thumbnails_of_a_query(page, objects_server):
    url, hashes = objects_server
    query = 'images.name == "samples" and images.context.subset == "val" and run.hparams.lr > 1e-3'
    open_page(page, f"{url}images?q={quote(query)}")
    expect(page.locator(".object-seq")).to_have_count(1)
    expect(page.locator(".thumb img")).to_have_count(2)
    section = page.locator(".object-seq")
    assert section.get_attribute("data-run") == hashes["large"]
    assert page.locator(".thumb figcaption").all_inner_texts() == ["val 2 #0", "val 2 #1"]
    page.wait_for_function("[...document.querySelectorAll('.thumb img')]"
                           ".every(i => i.complete && i.naturalWidth === 8)")
    open_page(page, url + "images?q=" + quote('images.name == "samples"'))
    expect(page.locator(".thumb img")).to_have_count(8)  # 2 runs x 2 contexts x 2 images
    assert "4 sequences, 8 images" in page.locator("#count").inner_text()


def test_step_slider_changes_the_thumbnails(page, objects_server):
    url, _ = objects_server
    open_page(page, url + "images?q=" + quote('images.context.subset == "train"'))
    expect(page.locator(".thumb img")).to_have_count(4)
    last = thumbnails(page)
    assert all("train 2" in t["alt"] for t in last)
    after_render(page, lambda: page.eval_on_selector(
        ".stepper input", "s => { s.value = '0'; s.dispatchEvent(new Event('change')); }"))
    first = thumbnails(page)
    assert all("train 0" in t["alt"] for t in first) and len(first) == 4
    assert {t["src"] for t in first}.isdisjoint({t["src"] for t in last})
    assert "step=0" in page.url
    red = page.evaluate("""() => new Promise(done => {
        const img = document.querySelector('.thumb img');
        const draw = () => { const c = document.createElement('canvas'); c.width = 8; c.height = 6;
          const g = c.getContext('2d'); g.drawImage(img, 0, 0);
          done(g.getImageData(0, 0, 1, 1).data[0]); };
        img.complete && img.naturalWidth ? draw() : img.addEventListener('load', draw); })""")
    assert red == 40  # step 0 is drawn
    page.click(".thumb img")
    expect(page.locator("#viewer")).to_be_visible()
    assert page.locator("#viewer-caption").inner_text() == "train 0 #0"
    page.keyboard.press("Escape")
    expect(page.locator("#viewer")).to_be_hidden()


def test_a_caption_with_markup_shows_as_text(page, objects_server):
    url, _ = objects_server
    open_page(page, url + "images?q=" + quote('images.name == "tricky"'))
    expect(page.locator(".thumb figcaption")).to_have_count(2)
    assert page.locator(".thumb figcaption").first.inner_text() == XSS
    assert page.locator(".object-seq img").count() == 2  # only the thumbnails themselves
    assert page.evaluate("document.body.dataset.pwned") is None


def test_texts_page_filters_steps(page, objects_server):
    url, _ = objects_server
    open_page(page, f"{url}texts")
    expect(page.locator(".object-seq")).to_have_count(2)
    assert page.locator("pre.text").count() == 6
    after_render(page, lambda: page.fill("#contains", "says 1"))
    assert sorted(page.locator("pre.text").all_inner_texts()) == ["large says 1", "small says 1"]
    after_render(page, lambda: page.fill("#q", "run.name == 'small'") or page.press("#q", "Enter"))
    assert page.locator("pre.text").all_inner_texts() == ["small says 1"]


def test_run_page_draws_a_distribution_and_a_figure(page, objects_server):
    url, hashes = objects_server
    open_page(page, f"{url}runs/{hashes['small']}")
    tabs = page.locator("#tabs button").all_inner_texts()
    assert tabs == ["Metrics", "Images", "Texts", "Distributions", "Figures", "Messages"]
    after_render(page, lambda: page.click('#tabs button[data-kind="distribution"]'))
    heatmap = page.locator('.tab-panel[data-kind="distribution"] .js-plotly-plot')
    expect(heatmap).to_have_count(1)
    trace = page.evaluate("() => document.querySelector("
                          "'.tab-panel[data-kind=\"distribution\"] .js-plotly-plot').data[0]")
    assert trace["type"] == "heatmap" and trace["x"] == [0, 1, 2] and len(trace["y"]) == 64
    assert page.locator('.tab-panel[data-kind="distribution"] .hm, '
                        '.tab-panel[data-kind="distribution"] image').count() >= 1
    after_render(page, lambda: page.click('#tabs button[data-kind="figure"]'))
    expect(page.locator('.tab-panel[data-kind="figure"] .js-plotly-plot')).to_have_count(1)
    expect(page.locator('.tab-panel[data-kind="figure"] .bars path')).to_have_count(2)
    assert "tab=figure" in page.url
    after_render(page, lambda: page.click('#tabs button[data-kind="log_record"]'))
    expect(page.locator("table.logs tbody tr")).to_have_count(1)
    assert "lr may be high" in page.locator("table.logs").inner_text()
    assert page.locator('.tab-panel[data-kind="distribution"]').is_hidden()


def test_blob_answers_are_cached_images_only(objects_server):
    import urllib.request

    url, hashes = objects_server
    data = api(url, "/api/objects", kind="image", q='images.name == "tricky"')
    src = data["sequences"][0]["items"][0]["src"]
    with urllib.request.urlopen(url + src.lstrip("/")) as resp:
        assert resp.headers["Content-Type"] == "image/png"
        assert "immutable" in resp.headers["Cache-Control"]
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.read()[:4] == b"\x89PNG"
