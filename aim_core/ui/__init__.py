"""`aim-core up`: a local dashboard over a repo (Starlette app, JSON API, static pages).

Needs the `[ui]` extra (starlette, uvicorn, plotly). Start it with
`aim_core.ui.server.serve(repo_path)` or build the app with `aim_core.ui.app.create_app`.
A page is registered in `aim_core.ui.pages.PAGES` (its files live in `static/`); an API area
is a module under `aim_core.ui.api` listed in its `MODULES`.
"""
