"""A repo holding HTML and script in every value the dashboard shows (for the XSS tests).

Names, params and contexts carry markup through the normal API; the catalog entry is then
edited by hand, as an attacker who hands someone a repo could, so that numbers (count, last,
min, max, steps, times) and the status are strings holding HTML too.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from aim_core import Repo, Run


def payload(where: str) -> str:
    """Markup that sets `window.__xss` if it is ever parsed as HTML."""
    return f"<img src=x onerror=\"window.__xss='{where}'\">"


METRIC = payload("metric")
NAME = payload("name")


def make_crafted_repo(path: Path) -> str:
    """Create the repo; return the crafted run's hash."""
    Repo(path, init=True)
    with Run(repo=str(path), experiment="<script>window.__xss='exp'</script>") as run:
        run.name = NAME
        run.description = payload("description")
        run.add_tag(payload("tag"))
        run["hparams"] = {"lr": 0.1, "note": payload("param")}
        run[payload("key")] = "<b>bold</b>"
        for step in range(5):
            run.track(1.0 / (step + 1), name=METRIC, step=step,
                      context={"subset": payload("context")})
            run.track(float(step), name="acc", step=step, context={payload("ckey"): "v"})
        run_hash = run.hash
    with Run(repo=str(path), experiment="plain") as other:
        other.name = "plain"
        other["hparams"] = {"lr": 0.2, "note": "fine"}
        for step in range(5):
            other.track(2.0 / (step + 1), name=METRIC, step=step,
                        context={"subset": payload("context")})
    craft_catalog(path, run_hash)
    return run_hash


def craft_catalog(path: Path, run_hash: str) -> None:
    """Turn the run's numbers and status in the catalog into strings holding HTML."""
    db = sqlite3.connect(Path(path) / ".aim_core" / "index.sqlite")
    try:
        (text,) = db.execute("SELECT value FROM runs WHERE key = ?", (run_hash,)).fetchone()
        entry = json.loads(text)
        entry["props"]["status"] = payload("status")
        entry["props"]["creation_time"] = payload("created")
        for seq in entry["sequences"]:
            for key in ("count", "last", "min", "max", "last_step", "first_step"):
                seq[key] = payload(key)
        db.execute("UPDATE runs SET value = ? WHERE key = ?", (json.dumps(entry), run_hash))
        db.commit()
    finally:
        db.close()
