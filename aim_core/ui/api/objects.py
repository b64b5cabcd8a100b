"""Object endpoints: the image and text searches, one run's object sequences, element bytes.

- ``GET /api/objects?kind=image&q=AimQL[&step=S][&limit=N]``: matching sequences with their
  steps and the elements at the step shown (the last at or before ``S``; the last by default);
- ``GET /api/texts?q=AimQL[&contains=word][&rows=N][&limit=N]``: steps x texts per sequence;
- ``GET /api/runs/{hash}/objects?kind=K&name=N[&context=JSON][&step=S]``: one sequence of a
  run as its tab draws it (a distribution grid, a figure, audio, images, texts, log records);
- ``GET /api/blob/{hash}?w=&o=&n=&t=``: the bytes of one element, cached for good.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aim_core.errors import BlobMissingError, RunNotFoundError
from aim_core.query.objects import query_objects
from aim_core.run import check_hash
from aim_core.storage.blobs import BlobStore
from aim_core.ui import object_views as views
from aim_core.ui import payload
from aim_core.ui.api.handler import BadRequest, Dashboard, choice_arg, endpoint, int_arg
from aim_core.ui.api.metrics import parse_context

KINDS = ("image", "text", "distribution", "audio", "figure", "log_record")
MAX_BYTES = 256 << 20
CACHE_FOREVER = "public, max-age=31536000, immutable"


def optional_int(request: Request, name: str) -> int | None:
    """An optional integer argument."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}") from None


def search_objects(request: Request, dash: Dashboard) -> dict[str, Any]:
    """GET /api/objects: image (or audio) sequences matching `q`, elements at one step."""
    kind = choice_arg(request, "kind", ("image", "audio"), "image")
    q = request.query_params.get("q", "").strip()
    step = optional_int(request, "step")
    limit = int_arg(request, "limit", 100, 1, 1000)
    found = query_objects(dash.repo, kind, q, **dash.query_options(query_objects))
    sequences, runs, truncated, all_steps = [], {}, False, set()
    for seq in found:
        if len(sequences) == limit:
            truncated = True
            break
        steps = seq.steps
        index = views.pick_step(steps, step)
        all_steps.update(steps.tolist())
        runs.setdefault(seq.run.hash, {"name": payload.clean(seq.run.name),
                                       "experiment": payload.clean(seq.run.experiment)})
        sequences.append({**views.sequence_head(seq),
                          "step": None if index is None else int(steps[index]),
                          "items": [] if index is None else views.items_at(seq, index)})
    return {"kind": kind, "runs": runs, "sequences": sequences, "truncated": truncated,
            "steps": sorted(all_steps)}


def search_texts(request: Request, dash: Dashboard) -> dict[str, Any]:
    """GET /api/texts: text sequences matching `q`, their latest steps containing a word."""
    q = request.query_params.get("q", "").strip()
    contains = request.query_params.get("contains", "")
    rows = int_arg(request, "rows", 200, 1, 10_000)
    limit = int_arg(request, "limit", 50, 1, 500)
    found = query_objects(dash.repo, "text", q, **dash.query_options(query_objects))
    sequences, runs, truncated = [], {}, False
    for seq in found:
        if len(sequences) == limit:
            truncated = True
            break
        shown, more = views.text_rows(seq, contains, rows)
        runs.setdefault(seq.run.hash, {"name": payload.clean(seq.run.name)})
        sequences.append({**views.sequence_head(seq), "rows": shown, "more": more})
    return {"runs": runs, "sequences": sequences, "truncated": truncated}


def run_objects(request: Request, dash: Dashboard) -> dict[str, Any]:
    """GET /api/runs/{hash}/objects: one object sequence of a run, as its tab shows it."""
    run_hash = request.path_params["hash"]
    kind = choice_arg(request, "kind", KINDS, "image")
    name = request.query_params.get("name")
    if not name:
        raise BadRequest("name is required")
    context = parse_context(request.query_params.get("context"))
    run = dash.repo.get_run(run_hash)
    if run is None:
        raise RunNotFoundError(f"No run {run_hash!r} in this repo.")
    seq = run._object_sequence(kind, name, context)
    if seq is None:
        raise RunNotFoundError(f"Run {run_hash} has no {kind} sequence {name!r} with that "
                               "context.")
    out = {**views.sequence_head(seq), "kind": kind}
    if kind == "distribution":
        return {**out, **views.distribution_grid(seq)}
    if kind == "log_record":
        return {**out, "records": views.log_rows(seq, int_arg(request, "rows", 1000, 1, 10_000))}
    if kind == "text":
        rows, more = views.text_rows(seq, request.query_params.get("contains", ""),
                                     int_arg(request, "rows", 200, 1, 10_000))
        return {**out, "rows": rows, "more": more}
    steps = seq.steps
    index = views.pick_step(steps, optional_int(request, "step"))
    out.update(steps=steps.tolist(), step=None if index is None else int(steps[index]))
    if kind == "figure":
        value = None if index is None else seq.value_at(index)
        figures = value if isinstance(value, list) else [value] if value is not None else []
        return {**out, "figures": [f.to_dict() for f in figures]}
    return {**out, "items": [] if index is None else views.items_at(seq, index)}


def get_blob(request: Request, dash: Dashboard) -> Response:
    """GET /api/blob/{hash}: the bytes of one stored element (images and audio only)."""
    run_hash = request.path_params["hash"]
    args = request.query_params
    where, fmt = args.get("w", ""), args.get("t", "").lower()
    if not views.LOCATION.match(where):
        raise BadRequest("w must be the location of a stored element")
    media = views.MEDIA_TYPES.get(fmt)
    if media is None:
        raise BadRequest(f"t must be one of {', '.join(sorted(views.MEDIA_TYPES))}")
    offset = int_arg(request, "o", 0, 0, 1 << 40)
    length = int_arg(request, "n", 0, 0, MAX_BYTES)
    etag = f'"{where}:{offset}:{length}"'
    headers = {"Cache-Control": CACHE_FOREVER, "ETag": etag,
               "X-Content-Type-Options": "nosniff",
               "Content-Security-Policy": "default-src 'none'; sandbox"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    try:
        check_hash(run_hash)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    data = read_location(dash, run_hash, where, offset, length)
    return Response(data, media_type=media, headers=headers)


def read_location(dash: Dashboard, run_hash: str, where: str, offset: int, length: int
                  ) -> bytes:
    """The bytes at one payload location of a run."""
    if where.startswith("blob:"):
        try:
            return BlobStore.of_repo(dash.repo.root).read(run_hash, where[5:], length)
        except BlobMissingError as exc:
            raise RunNotFoundError(str(exc)) from None
    run = dash.repo.get_run(run_hash)
    if run is None:
        raise RunNotFoundError(f"No run {run_hash!r} in this repo.")
    block = run._with_file(lambda run_file: run_file.get(where))
    if not isinstance(block, bytes) or offset + length > len(block):
        raise RunNotFoundError(f"No element at {where} in run {run_hash}.")
    return block[offset:offset + length]


def routes() -> list[Route]:
    """The object routes."""
    return [
        Route("/api/objects", endpoint(search_objects)),
        Route("/api/texts", endpoint(search_texts)),
        Route("/api/runs/{hash}/objects", endpoint(run_objects)),
        Route("/api/blob/{hash}", endpoint(get_blob)),
    ]
