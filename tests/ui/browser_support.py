"""Helpers for the browser tests: a real `serve()` in a child process, the API, page waits."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

READY = 'body[data-ready="1"]'


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


def api(url: str, path: str, **params: Any) -> dict:
    """GET a JSON API answer."""
    query = urllib.parse.urlencode(params, doseq=True)
    with urllib.request.urlopen(f"{url}{path.lstrip('/')}?{query}") as resp:
        return json.load(resp)


def open_page(page: Any, url: str) -> None:
    """Navigate and wait for the page's ready signal."""
    page.goto(url)
    page.wait_for_selector(READY, state="attached", timeout=20_000)


def row_hashes(page: Any, selector: str = "#runs tbody tr") -> list[str]:
    """The `data-hash` of each table row."""
    return page.eval_on_selector_all(selector, "rows => rows.map(r => r.dataset.hash)")


def quote(text: str) -> str:
    """URL-quote a query argument."""
    return urllib.parse.quote(text)
