"""Writing a complete run at once, for converters (TensorBoard, MLflow, Aim): ``write_run``.

The run file is built under a temporary name (``<hash>.importing``), synced once, renamed
into place, and only then given its catalog entry; the run's lock is held throughout, so a
second import of the same hash fails cleanly. A ``kill -9`` leaves at most a temporary file,
which the next repair removes (see ``maintenance.py``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..context import canonical_context, context_key
from ..errors import AimCoreError
from ..params import to_json
from ..values import MAX_STEP, MIN_STEP, step_out_of_range, to_step
from .blobs import BLOBS_DIR, BlobStore
from .catalog import Catalog, catalog_for
from .chunks import encode_chunk
from .kvfile import KVWriter, RawJSON, connect, table_sql
from .lock import RunLock
from .maintenance import entry_of
from .object_flush import prepare_object_points
from .points import latest_per_step, pending_columns, summarize
from .run_file import CHUNK_POINTS, FORMAT_VERSION, TABLE, chunk_key, fdatasync_path, seq_key
from .sequence_state import METRIC, ChunkLayout, SequenceState
from .writer import default_props

SequenceData = tuple[str, dict[str, Any] | None, str, Iterable[tuple[Any, Any, Any, Any]]]
REPO_DIR = ".aim_core"


def write_run(repo: Any, run_hash: str, props: dict[str, Any], params: dict[str, Any],
              sequences: Iterable[SequenceData]) -> None:
    """Write a finished run in one go; ``AimCoreError`` when the hash exists already.

    ``repo`` is a ``Repo`` or a repo path; ``props`` override the defaults of a new run
    (``name``, ``experiment``, ``creation_time``, ``end_time``, ``status``, ...);
    ``sequences`` holds ``(name, context, kind, points)`` with points as tracked:
    ``(step, value, epoch, timestamp)``, ``epoch`` None or NaN where there is none.
    """
    runs_dir, catalog = _locate(repo)
    props = _closed_props(run_hash, props)
    params = to_json(params or {}, "params")
    lock = RunLock(runs_dir / f"{run_hash}.lock", run_hash)
    lock.acquire()
    try:
        final = runs_dir / f"{run_hash}.sqlite"
        if final.exists():
            raise AimCoreError(f"Run {run_hash} already exists in {runs_dir.parent.parent}; "
                               "import it under another hash or delete the existing run.")
        items, infos = _encode(sequences, BlobStore(runs_dir.parent / BLOBS_DIR), run_hash)
        tmp = runs_dir / f"{run_hash}.importing"
        tmp.unlink(missing_ok=True)
        first = [("format", FORMAT_VERSION), ("props", props), ("params", params)]
        try:
            _write_file(tmp, first + items)
            os.rename(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        catalog.put(run_hash, entry_of(props, params, infos))
    finally:
        lock.release()


def _locate(repo: Any) -> tuple[Path, Catalog]:
    runs_dir = getattr(repo, "runs_dir", None)
    if runs_dir is not None:
        return Path(runs_dir), repo.catalog
    root = Path(repo).expanduser()
    root = root if root.name == REPO_DIR else root / REPO_DIR
    (root / "runs").mkdir(parents=True, exist_ok=True)
    catalog = catalog_for(root / "index.sqlite")
    if not catalog.path.exists():
        catalog.create()
    return root / "runs", catalog


def _closed_props(run_hash: str, props: dict[str, Any]) -> dict[str, Any]:
    out = {**default_props(run_hash, None), **to_json(props or {}, "props")}
    out["active"] = False
    out["status"] = out.get("status") if out.get("status") in ("finished", "failed") else "finished"
    if out.get("end_time") is None:
        out["end_time"] = out["creation_time"]
    return out


def _encode(sequences: Iterable[SequenceData], blobs: BlobStore, run_hash: str
            ) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    items: list[tuple[str, Any]] = []
    infos: dict[str, Any] = {}
    seen: set[tuple[str, str]] = set()
    for index, (name, context, kind, points) in enumerate(sequences):
        context = canonical_context(context)
        key = (name, context_key(context))
        if key in seen:
            raise ValueError(f"sequence {name!r} {context!r} is given twice")
        seen.add(key)
        seq = SequenceState(str(index), name, context, kind)
        if kind != METRIC:  # elements, lists of them, or EncodedPoints: encoded here
            points = [(_step(s, name), v, _epoch(e), float(t)) for s, v, e, t in points]
            layout, summary, puts = prepare_object_points(seq, points, _no_stored_value,
                                                          blobs, run_hash)
            items += puts
            info = seq.info(layout, summary)
            items.append((seq_key(seq.seq_id), RawJSON(json.dumps(info, separators=(",", ":")))))
            infos[seq.seq_id] = info
            continue
        columns = pending_columns([(_step(s, name), float(v), _epoch(e), float(t))
                                   for s, v, e, t in points])
        layout = ChunkLayout(seq, CHUNK_POINTS)
        layout.append(columns, _no_stored_chunks)
        summary = summarize(latest_per_step(columns))
        items += [(chunk_key(seq.seq_id, i), encode_chunk(c)) for i, c in layout.written.items()]
        info = seq.info(layout, summary)
        items.append((seq_key(seq.seq_id), RawJSON(json.dumps(info, separators=(",", ":")))))
        infos[seq.seq_id] = info
    return items, infos


def _step(step: Any, name: str) -> int:
    step = to_step(step)
    if not MIN_STEP <= step <= MAX_STEP:
        raise step_out_of_range(step, name)
    return step


def _epoch(epoch: Any) -> float:
    return float("nan") if epoch is None else float(epoch)


def _no_stored_value(key: str) -> None:
    return None  # an imported sequence has nothing stored yet


def _no_stored_chunks(chunk_id: int) -> Any:
    raise AssertionError("an imported sequence has no stored chunks")


def _write_file(path: Path, items: list[tuple[str, Any]]) -> None:
    """One transaction, no journal (the file is not visible until renamed), one sync."""
    conn = connect(path)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute(table_sql(TABLE))
        kv = KVWriter(path, TABLE, conn)
        with kv.transaction():
            kv.put_many(items)
    finally:
        conn.close()
    fdatasync_path(path)
