"""``aim-core convert aim``: every run of an Aim 3 repo, read through Aim's own SDK.

The ``aim`` package must be importable in the same environment (Aim pins its own
dependencies, so it usually lives in a venv of its own: install aim-core there). A run
keeps its Aim hash, name, experiment, tags, description, archived flag, params, creation and
end time, and its metrics with steps, epochs, timestamps and contexts. Converting again
skips runs that ended before and adds only new points to runs that were still going.
Object sequences (images, texts, distributions, audios, figures) keep their steps, epochs and
times; images keep their encoded bytes.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from ..context import context_key
from ..errors import ConvertError
from ..params import to_json
from ..repo import Repo
from ..run import check_hash
from .report import ConvertReport, ProgressFactory, convert_each, progress_bar
from .writing import (
    SequenceData,
    finished_props,
    new_points,
    save_converted,
    stored_sequences,
    taken_hash_error,
)

SOURCE = "aim"
OBJECT_KINDS = {
    "images": ("aim.image", "list(aim.image)"),
    "texts": ("aim.text", "list(aim.text)"),
    "distributions": ("aim.distribution",),
    "audios": ("aim.audio", "list(aim.audio)"),
    "figures": ("aim.figure",),
}


def import_aim() -> Any:
    """The ``aim`` package; ConvertError saying how to get it when it is missing."""
    try:
        import aim
        from aim.sdk.repo import Repo as AimRepo  # noqa: F401
    except ImportError as exc:
        raise ConvertError(
            f"Converting an Aim repo reads it with Aim's own SDK, and the aim package is not "
            f"importable by {sys.executable} ({exc}). Install both in one environment "
            "(Aim 3 supports Python 3.7-3.12): pip install aim==3.29.1 aim-core, then run "
            "`aim-core convert aim` from there.") from None
    return aim


def open_aim_repo(path: str | os.PathLike) -> tuple[Any, Any, Any]:
    """``(aim module, Aim Repo, union container)`` for the repo at ``path``."""
    aim = import_aim()
    from aim.sdk.repo import ContainerConfig
    from aim.storage.union import RocksUnionContainer

    folder = Path(path).expanduser().resolve()
    if folder.name != ".aim":
        folder = folder / ".aim"
    if not folder.is_dir():
        raise ConvertError(f"No Aim repo at {path}: give the folder that holds .aim.")
    repo = aim.Repo.from_path(str(folder.parent))
    # Aim reads run metadata through an index that only `aim up` and `aim storage reindex`
    # keep current; reading the union of the runs' own files sees every run as it is.
    # The pool holds weak references: the caller keeps the union alive.
    union = RocksUnionContainer(os.path.join(repo.path, "meta"), read_only=True)
    repo.container_pool[ContainerConfig("meta", None, True)] = union
    return aim, repo, union


class AimConverter:
    """Converts the runs of one Aim repo into one repo."""

    def __init__(self, aim_path: str | os.PathLike, repo: Repo, report: ConvertReport) -> None:
        self.aim, self.aim_repo, self._union = open_aim_repo(aim_path)
        self.repo, self.report = repo, report

    def run_hashes(self) -> list[str]:
        """Every run of the Aim repo, in a stable order."""
        return sorted(self.aim_repo.list_all_runs())

    def convert(self, aim_hash: str) -> None:
        """Convert one Aim run: new, updated with its new points, or left as it is."""
        run = self.aim.Run(aim_hash, repo=self.aim_repo, read_only=True)
        run_hash = check_hash(aim_hash)
        entry = self.repo.catalog.get(run_hash)
        stored = (entry or {}).get("props", {}).get("source") or {}
        if entry is not None and (stored.get("kind"), stored.get("id")) != (SOURCE, aim_hash):
            raise taken_hash_error(run_hash, f"Aim run {aim_hash}")
        end_time = run.end_time
        if entry is not None and end_time is not None and stored.get("end_time") == end_time:
            self.report.unchanged()
            return
        source = {"kind": SOURCE, "id": aim_hash, "repo": str(self.aim_repo.path),
                  "end_time": end_time}
        sequences = self._metrics(run, entry) + self._objects(run, entry)
        props = finished_props(
            run.name or f"Run: {aim_hash}", run.experiment or "default", run.creation_time,
            end_time, "finished" if end_time is not None else "crashed", source,
            description=run.description or "", tags=[str(t) for t in run.tags],
            archived=bool(run.archived))
        params = {**(entry or {}).get("params", {}), **aim_params(run)}
        save_converted(self.repo, run_hash, entry, props, params, sequences, self.report)

    def _metrics(self, run: Any, entry: dict[str, Any] | None) -> list[SequenceData]:
        stored = stored_sequences(entry)
        sequences: list[SequenceData] = []
        # run.metrics() applies Aim's default query, which hides the metrics of archived runs
        for name, context_obj, _ in run.iter_metrics_info():
            metric = run.get_metric(name, context_obj)
            if metric is None:
                continue
            steps, (values, epochs, times) = metric.data.numpy()
            points = list(zip(steps.tolist(), values.astype(float).tolist(),
                              epochs.astype(float).tolist(), times.astype(float).tolist(),
                              strict=True))
            context = context_obj.to_dict()
            old = stored.get((name, context_key(context)))
            sequences.append((name, context, "metric", new_points(points, old)))
        return sequences

    def _objects(self, run: Any, entry: dict[str, Any] | None) -> list[SequenceData]:
        from aim.storage.context import Context

        stored = stored_sequences(entry)
        sequences: list[SequenceData] = []
        for plural, dtypes in OBJECT_KINDS.items():
            kind = plural.removesuffix("s")
            for name, context, _ in run.iter_sequence_info_by_type(dtypes):
                seq = getattr(run, f"get_{kind}_sequence")(name, Context(context.to_dict()))
                if seq is None:
                    continue
                points = [(int(step), aim_element(kind, value), math.nan if epoch is None
                           else float(epoch), float(timestamp))
                          for step, (value, epoch, timestamp) in seq.data.items()]
                context_dict = context.to_dict()
                old = stored.get((name, context_key(context_dict)))
                sequences.append((name, context_dict, kind, new_points(points, old)))
        return sequences


def aim_element(kind: str, value: Any) -> Any:
    """An Aim object (or a list of them) as aim-core's element of the same kind."""
    from ..objects import EncodedPoint

    if isinstance(value, list):
        if kind == "image":
            return EncodedPoint("image", True, [_image(v) for v in value])
        return [aim_element(kind, v) for v in value]
    if kind == "image":
        return EncodedPoint("image", False, [_image(value)])
    from .. import objects

    if kind == "text":
        return objects.Text(value.data)
    if kind == "distribution":
        return objects.Distribution(hist=value.weights, bin_range=value.range)
    if kind == "audio":
        return objects.Audio(bytes(value.storage["data"].load()),
                             format=value.storage["format"], caption=value.storage["caption"])
    return objects.Figure(json.loads(value.data))


def _image(image: Any) -> tuple[dict[str, Any], bytes]:
    """An Aim image's metadata and its encoded bytes, kept as they are."""
    storage = image.storage
    try:
        mode = storage["mode"]
    except KeyError:  # images written by old Aim versions
        mode = "RGB"
    meta = {"caption": storage["caption"], "format": str(storage["format"]).lower(),
            "width": storage["width"], "height": storage["height"], "mode": mode}
    return meta, bytes(storage["data"].load())


def aim_params(run: Any) -> dict[str, Any]:
    """Every param of an Aim run as JSON values (anything else as its text)."""
    try:
        params = run[...]
    except KeyError:  # a run without params
        return {}
    return to_json(params, fallback=lambda value, path: str(value))


def convert_aim(aim_repo: str | os.PathLike, repo: Repo, *,
                progress: ProgressFactory | None = None) -> ConvertReport:
    """Convert every run of the Aim repo at ``aim_repo`` into ``repo``."""
    report = ConvertReport(SOURCE)
    converter = AimConverter(aim_repo, repo, report)
    hashes = converter.run_hashes()
    with progress_bar(progress, len(hashes)) as bar:
        convert_each(hashes, converter.convert, lambda h: f"Aim run {h}", report, bar)
    return report
