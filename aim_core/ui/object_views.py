"""What the dashboard shows of an object sequence: elements at a step (with the URL of their
bytes), text rows, distributions as a histogram-over-steps grid, figures, log records.

Element bytes are served by ``/api/blob/<run>`` from their location in the run file (or the
run's blob file); a location is written once and never changes, so its URL can be cached
for good. Metadata (captions, texts, names) goes out as JSON values: the pages insert it as
text, never as HTML.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from typing import Any

import numpy as np

from aim_core.ui import payload

MEDIA_TYPES = {
    "png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "gif": "image/gif",
    "webp": "image/webp", "bmp": "image/bmp", "tiff": "image/tiff",
    "wav": "audio/wav", "mp3": "audio/mpeg", "flac": "audio/flac",
}
"""Types the blob endpoint may answer with: images and audio only (never HTML or SVG)."""
LOCATION = re.compile(r"^(payload/[A-Za-z0-9_.-]{1,80}/[0-9a-f]{1,32}\.[0-9]{1,9}|"
                      r"blob:[0-9a-f]{64})$")
MAX_GRID_STEPS, GRID_BINS = 300, 64


def pick_step(steps: np.ndarray, wanted: int | None) -> int | None:
    """The index of the step to show: the last at or before ``wanted`` (the first step when
    ``wanted`` comes before all of them; the last step when ``wanted`` is None)."""
    if not len(steps):
        return None
    if wanted is None:
        return len(steps) - 1
    index = int(np.searchsorted(steps, wanted, side="right")) - 1
    return max(index, 0)


def blob_url(run_hash: str, record: Any, fmt: str) -> str:
    """The URL of one stored element's bytes."""
    query = urllib.parse.urlencode({"w": record.where, "o": record.offset, "n": record.length,
                                    "t": fmt})
    return f"/api/blob/{urllib.parse.quote(run_hash)}?{query}"


def items_at(seq: Any, index: int) -> list[dict[str, Any]]:
    """The elements (image or audio) tracked at the ``index``-th step of ``seq``."""
    records = seq.stored_records(index) or []
    out = []
    for position, record in enumerate(records):
        meta = record.meta if isinstance(record.meta, dict) else {}
        fmt = str(meta.get("format") or "")
        out.append({
            "index": position, "caption": payload.clean(meta.get("caption", "")),
            "format": fmt, "width": payload.clean(meta.get("width")),
            "height": payload.clean(meta.get("height")),
            "src": blob_url(seq.run.hash, record, fmt) if record.where else None,
        })
    return out


def sequence_head(seq: Any) -> dict[str, Any]:
    """Run, name, context and step range of a sequence."""
    return {"run": seq.run.hash, "name": str(seq.name),
            "context": payload.context_of(seq.context.to_dict()), "count": seq.count,
            "first_step": seq.first_step, "last_step": seq.last_step}


def text_rows(seq: Any, contains: str, limit: int) -> tuple[list[dict[str, Any]], bool]:
    """Up to ``limit`` latest steps whose text contains ``contains`` (any case):
    ``[{step, epoch, texts}]``, and whether older matching steps were left out."""
    rows = []
    needle = contains.lower()
    for step, (value, epoch, _time) in seq.data.items():
        texts = [t.data for t in (value if isinstance(value, list) else [value])]
        if needle and not any(needle in t.lower() for t in texts):
            continue
        rows.append({"step": step, "epoch": epoch, "texts": texts})
    return rows[-limit:], len(rows) > limit


def distribution_grid(seq: Any) -> dict[str, Any]:
    """Histograms over steps on one common grid of bins (for a heatmap): each step's counts
    are spread over the grid by the overlap of its bins; steps are thinned to at most
    ``MAX_GRID_STEPS``, keeping the first and the last."""
    steps = seq.steps
    if not len(steps):
        return {"steps": [], "y": [], "z": []}
    keep = np.unique(np.linspace(0, len(steps) - 1, min(len(steps), MAX_GRID_STEPS))
                     .round().astype(np.int64))
    hists = [seq.value_at(int(i)) for i in keep]
    hists = [h[0] if isinstance(h, list) else h for h in hists]
    ranges = [h.range for h in hists]
    lo = min(r[0] for r in ranges)
    hi = max(r[1] for r in ranges)
    if not hi > lo:
        hi = lo + 1.0
    grid = np.linspace(lo, hi, GRID_BINS + 1)
    columns = []
    for hist in hists:
        weights, edges = hist.to_np_histogram()
        if not edges[-1] > edges[0]:
            edges = np.array([edges[0], edges[0] + (hi - lo) / GRID_BINS])
            weights = np.array([weights.sum()])
        cumulative = np.concatenate([[0.0], np.cumsum(weights)])
        columns.append(np.diff(np.interp(grid, edges, cumulative)))
    z = np.array(columns).T  # rows: bins, columns: steps
    centers = (grid[:-1] + grid[1:]) / 2
    return {"steps": steps[keep].tolist(), "y": payload.float_list(centers.tolist()),
            "z": [payload.float_list(row) for row in z.tolist()]}


def log_rows(seq: Any, limit: int) -> list[dict[str, Any]]:
    """The latest ``limit`` log records."""
    rows = []
    total = len(seq.steps)
    for index in range(max(0, total - limit), total):
        value = seq.value_at(index)
        for record in value if isinstance(value, list) else [value]:
            logged = record.timestamp
            rows.append({"step": int(seq.steps[index]), "level": record.level_name,
                         "message": record.message,
                         "time": logged if isinstance(logged, float) and math.isfinite(logged)
                         else None, "extra": payload.clean(record.extra_args)})
    return rows
