"""The dashboard's pages: each is a body fragment and a script under `static/`, wrapped in
one shell (head, top bar with the navigation, shared scripts).

To add a page (say images), write `static/images.html` (the `<main>` content) and
`static/images.js`, then add `Page("/images", "images", "Images", nav="Images")` to `PAGES`.
The shell loads `common.js`, then the page's `scripts` (e.g. `charts.js`), then its own
script; a page signals it has drawn by calling `Dash.ready()`.
"""

from __future__ import annotations

import functools
import html
from dataclasses import dataclass
from pathlib import Path

STATIC = Path(__file__).with_name("static")


@dataclass(frozen=True)
class Page:
    """One page: its route, its files' base name, its title and its label in the top bar."""

    route: str
    name: str
    title: str
    nav: str | None = None
    scripts: tuple[str, ...] = ()


PAGES: tuple[Page, ...] = (
    Page("/", "runs", "Runs", nav="Runs"),
    Page("/metrics", "metrics", "Metrics", nav="Metrics", scripts=("charts.js",)),
    Page("/params", "params", "Params", nav="Params", scripts=("charts.js",)),
    Page("/scatters", "scatters", "Scatters", nav="Scatters", scripts=("charts.js",)),
    Page("/images", "images", "Images", nav="Images", scripts=("objects.js",)),
    Page("/texts", "texts", "Texts", nav="Texts", scripts=("objects.js",)),
    Page("/compare", "compare", "Compare", scripts=("charts.js",)),
    Page("/runs/{hash}", "run", "Run", scripts=("charts.js", "objects.js")),
)


def nav_html(current: Page) -> str:
    """The top bar's links, the current page marked."""
    links = []
    for page in PAGES:
        if page.nav is None:
            continue
        active = ' class="active"' if page is current else ""
        links.append(f'<a href="{page.route}"{active}>{html.escape(page.nav)}</a>')
    return "".join(links)


@functools.cache
def render(page: Page) -> str:
    """The full HTML of a page (built once per process)."""
    shell = (STATIC / "shell.html").read_text(encoding="utf-8")
    scripts = ["common.js", *page.scripts, f"{page.name}.js"]
    tags = "\n".join(f'<script src="/static/{name}"></script>' for name in scripts)
    body = (STATIC / f"{page.name}.html").read_text(encoding="utf-8")
    return (shell.replace("%%TITLE%%", html.escape(page.title))
            .replace("%%PAGE%%", page.name)
            .replace("%%NAV%%", nav_html(page))
            .replace("%%BODY%%", body)
            .replace("%%SCRIPTS%%", tags))
