"""The run page's System section and Logs tab, and system metrics kept off the metrics page,
in real headless Chromium over a live dashboard."""

from __future__ import annotations

import time

import pytest
from browser_support import api, open_page, start_server, stop_server

from aim_core import Repo, Run

CPU_NAMES = ["__system__cpu", "__system__memory_percent", "__system__p_memory_percent",
             "__system__disk_percent"]
GPU_NAMES = ["__system__gpu", "__system__gpu_memory_percent", "__system__gpu_temp",
             "__system__gpu_power_watts"]


def _two_gpu_run(repo):
    """A run sampled for real, plus what NVML would give on a two-GPU machine."""
    run = Run(repo=str(repo), experiment="system", system_tracking_interval=0.1,
              capture_terminal_logs=False)
    run.name = "two-gpus"
    for step in range(5):
        for gpu in (0, 1):
            ctx = {"gpu": gpu}
            run.track(40.0 + 10 * gpu + step, name="__system__gpu", step=step, context=ctx)
            run.track(20.0 + gpu, name="__system__gpu_memory_percent", step=step, context=ctx)
            run.track(55.0 + gpu, name="__system__gpu_temp", step=step, context=ctx)
            run.track(120.0 + gpu, name="__system__gpu_power_watts", step=step, context=ctx)
        run.track(1.0 / (step + 1), name="loss", step=step)
    time.sleep(0.5)
    run.close()
    return run.hash


@pytest.fixture(scope="module")
def system_repo(tmp_path_factory):
    """A repo of its own (the shared one's runs are counted by other tests) and its server."""
    path = tmp_path_factory.mktemp("system_repo")
    Repo(path, init=True)
    run_hash = _two_gpu_run(path)
    proc, url = start_server(path)
    yield path, url, run_hash
    stop_server(proc)


def test_system_section_has_one_chart_per_metric_and_one_line_per_gpu(page, system_repo):
    _, server, run_hash = system_repo
    open_page(page, f"{server}runs/{run_hash}")
    page.wait_for_selector("#system .chart-box")
    names = page.eval_on_selector_all("#system .chart-box", "b => b.map(x => x.dataset.name)")
    assert names == CPU_NAMES + GPU_NAMES
    titles = page.eval_on_selector_all("#system .chart-box h3", "h => h.map(x => x.textContent)")
    assert titles[0] == "CPU (% of a core)" and titles[-1] == "GPU power (W)"
    traces = page.evaluate("""() => [...document.querySelectorAll('#system .chart')].map(c =>
        c.data.map(t => ({name: t.name, y: Array.from(t.y)})))""")
    by_name = dict(zip(names, traces, strict=True))
    assert [t["name"] for t in by_name["__system__gpu"]] == ["GPU 0", "GPU 1"]
    assert by_name["__system__gpu"][1]["y"] == [50.0, 51.0, 52.0, 53.0, 54.0]
    (cpu,) = by_name["__system__cpu"]
    (stored,) = api(server, "/api/series", run=run_hash, name="__system__cpu")["series"]
    assert cpu["y"] == stored["values"] and len(cpu["y"]) >= 2
    boxes = page.eval_on_selector_all("#charts .chart-box", "b => b.map(x => x.dataset.name)")
    assert boxes == ["loss (no context)"]  # the run's own metrics, without the system ones


def test_metrics_page_hides_system_metrics_unless_the_query_names_them(page, system_repo):
    _, server, run_hash = system_repo
    open_page(page, f"{server}metrics?q=run.hash == '{run_hash}'")
    page.wait_for_selector(".chart-box")
    shown = page.eval_on_selector_all(".chart-box h3", "h => h.map(x => x.textContent)")
    assert not [s for s in shown if "__system__" in s] and shown
    query = f"run.hash == '{run_hash}' and metric.name.startswith('__system__gpu')"
    open_page(page, f"{server}metrics?q={query}")
    page.wait_for_selector(".chart-box")
    shown = page.eval_on_selector_all(".chart-box h3", "h => h.map(x => x.textContent)")
    assert shown and all("__system__gpu" in s for s in shown)


def _shown_lines(page):
    return page.eval_on_selector_all(
        "#logs .line",
        "ls => ls.map(l => [Number(l.dataset.step), l.querySelector('.t').textContent])")


def test_logs_tab_follows_a_live_run(page, system_repo, capsys):
    import sys

    path, server, _ = system_repo
    run = Run(repo=str(path), experiment="logs", system_tracking_interval=None,
              flush_interval=0.1)
    try:
        print("epoch 1")
        print('<img src=x onerror="document.body.dataset.pwned=1"> \x1b[31mred\x1b[0m')
        sys.stderr.write("\rtraining  50%")
        run.flush()
        open_page(page, f"{server}runs/{run.hash}?tab=terminal")
        tabs = page.locator("#tabs button").all_inner_texts()
        assert tabs == ["Metrics", "Logs"]  # the `logs` text sequence is not under Texts
        page.wait_for_function("() => document.querySelectorAll('#logs .line').length === 3")
        assert _shown_lines(page) == [
            [0, "epoch 1"], [1, '<img src=x onerror="document.body.dataset.pwned=1"> red'],
            [2, "training  50%"]]  # as text, colour codes dropped, the live bar shown
        sys.stderr.write("\rtraining 100%\n")
        print("epoch 2")
        run.flush()
        page.wait_for_function("() => document.querySelectorAll('#logs .line').length === 4",
                               timeout=15_000)
        assert _shown_lines(page)[2:] == [[2, "training 100%"], [3, "epoch 2"]]
        assert "live" in page.locator("#logs-status").inner_text()
        assert page.evaluate("document.body.dataset.pwned") is None
    finally:
        run.close()
