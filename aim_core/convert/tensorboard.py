"""``aim-core convert tensorboard``: TensorBoard event files to runs (extra ``[tensorboard]``).

Run folders: a folder one level below LOGDIR is a run, and the event files in its direct
subfolders belong to it with context ``{"entry": subfolder}`` (Keras writes ``train/`` and
``validation/`` there: those become ``{"subset": ...}``); event files directly in LOGDIR
make LOGDIR a run. With ``flat`` every folder holding event files is a run of its own.

Files are read with TensorBoard's ``EventAccumulator`` (store-everything size guidance, no
TensorFlow). Scalars become metrics; histograms Distributions (re-binned into 64 even bins);
images Images (their PNG/JPEG bytes kept); text Text; audio Audio. A run remembers per file
its size and how many events of each tag it took, so converting again reads only files that
grew and adds only the events past that count.
"""

from __future__ import annotations

import hashlib
import math
import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..context import context_key
from ..errors import ConvertError
from ..params import to_json
from ..repo import Repo
from .report import ConvertReport, ProgressFactory, convert_each, progress_bar
from .writing import Point, append_run, finished_props, taken_hash_error, write_run

SOURCE = "tensorboard"
READER_VERSION = 2  # files read by an older reader are read again (they may hold more kinds)
SUBSETS = {"train": "train", "training": "train", "val": "val", "validation": "val",
           "valid": "val", "test": "test", "eval": "eval"}
OBJECT_TAGS = {"histograms": "distribution", "images": "image", "audio": "audio"}
_RECORD_OVERHEAD = 16  # length (8), length CRC (4), data CRC (4)


@dataclass
class RunFolder:
    """One run to be: its name, folder and event files (each with its entry subfolder)."""

    name: str
    path: Path
    files: list[tuple[Path, str | None]]

    def identity(self) -> str:
        """A name for the run that survives moving LOGDIR: folder name and first file."""
        first = min(path.name for path, _ in self.files)
        return f"{self.name}/{first}"

    def run_hash(self) -> str:
        """The run's hash: the same folder always converts into the same run."""
        return hashlib.sha1(f"{SOURCE}\0{self.identity()}".encode()).hexdigest()[:24]


@dataclass
class Collected:
    """What the new events of one run folder add up to."""

    sequences: dict[str, tuple[str, dict[str, Any], str, list[Point]]] = field(
        default_factory=dict)
    hparams: dict[str, Any] = field(default_factory=dict)
    first_time: float = math.inf
    last_time: float = -math.inf

    def add(self, name: str, context: dict[str, Any], points: list[Point],
            kind: str = "metric") -> bool:
        """Append points to sequence ``(name, context)``; False if it holds another kind."""
        if not points:
            return True
        key = f"{name}\0{context_key(context)}"
        if key not in self.sequences:
            self.sequences[key] = (name, context, kind, [])
        if self.sequences[key][2] != kind:
            return False
        self.sequences[key][3].extend(points)
        self.first_time = min(self.first_time, min(p[3] for p in points))
        self.last_time = max(self.last_time, max(p[3] for p in points))
        return True

    def point_count(self) -> int:
        """How many points were collected."""
        return sum(len(points) for *_, points in self.sequences.values())


def tag_to_sequence(tag: str, entry: str | None = None) -> tuple[str, dict[str, Any]]:
    """``a/train/loss`` -> ``("loss", {"subset": "train", "tag": "a"})``; entry folders too.

    A subset part may also come last (``Loss/train``, as in PyTorch's tutorial): the name is
    then the part before it.
    """
    parts = [part for part in tag.split("/") if part] or [tag]
    context: dict[str, Any] = {}
    rest = []
    for i, part in enumerate(parts):
        if part.lower() in SUBSETS and "subset" not in context and (i < len(parts) - 1 or rest):
            context["subset"] = SUBSETS[part.lower()]
        else:
            rest.append(part)
    if len(rest) > 1:
        context["tag"] = "/".join(rest[:-1])
    if entry is not None:
        if entry.lower() in SUBSETS and "subset" not in context:
            context["subset"] = SUBSETS[entry.lower()]
        else:
            context["entry"] = entry
    return rest[-1], context


def find_run_folders(logdir: Path, flat: bool = False) -> tuple[list[RunFolder], int]:
    """The run folders under ``logdir`` and how many event files lie too deep to belong."""
    groups: dict[Path, list[tuple[Path, str | None]]] = {}
    too_deep = 0
    for dirpath, dirnames, filenames in os.walk(logdir):
        dirnames.sort()
        events = sorted(name for name in filenames if "tfevents" in name)
        if not events:
            continue
        rel = Path(dirpath).relative_to(logdir)
        if flat or len(rel.parts) <= 1:
            run_dir, entry = rel, None
        elif len(rel.parts) == 2:
            run_dir, entry = Path(rel.parts[0]), rel.parts[1]
        else:
            too_deep += len(events)
            continue
        groups.setdefault(run_dir, []).extend((Path(dirpath) / name, entry) for name in events)
    folders = [RunFolder(logdir.name if str(rel) == "." else rel.as_posix(), logdir / rel, files)
               for rel, files in sorted(groups.items())]
    return folders, too_deep


class TensorBoardConverter:
    """Converts the run folders of one LOGDIR into one repo."""

    def __init__(self, logdir: Path, repo: Repo, experiment: str | None, flat: bool,
                 report: ConvertReport) -> None:
        self.accumulators = require_tensorboard()
        self.logdir, self.repo, self.flat, self.report = logdir, repo, flat, report
        self.experiment = experiment or logdir.name

    def folders(self) -> list[RunFolder]:
        """The run folders to convert (too deep event files are counted as skipped)."""
        folders, too_deep = find_run_folders(self.logdir, self.flat)
        self.report.skip("event files more than two folders below LOGDIR (use --flat)",
                         too_deep)
        return folders

    def convert(self, folder: RunFolder) -> None:
        """Convert one run folder: a new run, new points added to it, or nothing."""
        run_hash = folder.run_hash()
        entry = self.repo.catalog.get(run_hash)
        source = (entry or {}).get("props", {}).get("source") or {}
        if entry is not None and source.get("id") != folder.identity():
            raise taken_hash_error(run_hash, str(folder.path))
        files_state = dict(source.get("files", {}))
        collected = Collected()
        changed = False
        for path, sub in folder.files:
            rel = path.relative_to(folder.path).as_posix()
            state = self._read_file(path, sub, files_state.get(rel), collected)
            if state != files_state.get(rel):
                files_state[rel], changed = state, True
        if not changed:
            self.report.unchanged()
            return
        if entry is None and not collected.sequences and not collected.hparams:
            self.report.skip("run folders with no scalars or hparams")
            return
        new_source = {"kind": SOURCE, "id": folder.identity(), "path": str(folder.path),
                      "files": files_state}
        self._write(folder, run_hash, entry, new_source, collected)

    def _write(self, folder: RunFolder, run_hash: str, entry: dict[str, Any] | None,
               source: dict[str, Any], collected: Collected) -> None:
        sequences = list(collected.sequences.values())
        params = dict((entry or {}).get("params", {}))
        if collected.hparams:
            params["hparams"] = {**params.get("hparams", {}), **collected.hparams}
        if entry is None:
            first = collected.first_time if math.isfinite(collected.first_time) else None
            last = collected.last_time if math.isfinite(collected.last_time) else first
            props = finished_props(folder.name, self.experiment, first or os.path.getmtime(
                folder.path), last, "finished", source)
            write_run(self.repo, run_hash, props, params, sequences)
        else:
            props = dict(entry["props"])
            if math.isfinite(collected.first_time):
                props["creation_time"] = min(props["creation_time"], collected.first_time)
                props["end_time"] = max(props.get("end_time") or collected.last_time,
                                        collected.last_time)
            props["source"] = source
            append_run(self.repo, run_hash, props, params, sequences)
        self.report.wrote(len(sequences), collected.point_count(), entry is None)

    # -- one event file ------------------------------------------------------------------
    def _read_file(self, path: Path, entry: str | None, state: dict[str, Any] | None,
                   collected: Collected) -> dict[str, Any] | None:
        """Collect the new events of one file; return its new state (``state`` if none)."""
        size = path.stat().st_size
        if state and state.get("size") == size and state.get("v") == READER_VERSION:
            if state.get("damaged"):
                self.report.fail(str(path), state["damaged"])
            return state
        acc = self.accumulators.EventAccumulator(
            str(path), size_guidance=self.accumulators.STORE_EVERYTHING_SIZE_GUIDANCE,
            purge_orphaned_data=False).Reload()
        done = dict((state or {}).get("read", {}))
        read = self._collect(acc, entry, done, collected)
        complete, damaged = check_records(path, acc)
        if complete < size:
            self.report.skip("incomplete last record of an event file (still being written?)")
        new_state: dict[str, Any] = {"size": complete, "read": read, "v": READER_VERSION}
        if damaged:
            new_state["damaged"] = damaged
            self.report.fail(str(path), damaged)
        return new_state

    def _collect(self, acc: Any, entry: str | None, done: dict[str, int],
                 collected: Collected) -> dict[str, int]:
        tags = acc.Tags()
        read = dict(done)
        for tag in tags.get("scalars", []):
            events = acc.Scalars(tag)
            key = f"scalars/{tag}"
            new = events[done.get(key, 0):]
            name, context = tag_to_sequence(tag, entry)
            self._add(collected, tag, entry, "metric",
                      [(e.step, float(e.value), math.nan, e.wall_time) for e in new])
            read[key] = len(events)
        for tag in tags.get("tensors", []):
            self._collect_tensor(acc, tag, entry, done, read, collected)
        for group, kind in OBJECT_TAGS.items():
            for tag in tags.get(group, []):
                events = getattr(acc, _GETTERS[group])(tag)
                key = f"{group}/{tag}"
                new = events[done.get(key, 0):]
                self._add(collected, tag, entry, kind, [
                    (e.step, ELEMENTS[kind](e), math.nan, e.wall_time) for e in new])
                read[key] = len(events)
        if tags.get("graph") or tags.get("meta_graph"):
            self.report.skip("TensorBoard graphs (not converted)")
        collected.hparams.update(session_hparams(acc))
        return read

    def _collect_tensor(self, acc: Any, tag: str, entry: str | None, done: dict[str, int],
                        read: dict[str, int], collected: Collected) -> None:
        plugin = acc.SummaryMetadata(tag).plugin_data.plugin_name
        events = acc.Tensors(tag)
        if plugin not in ("scalars", "text"):
            self.report.skip(f"TensorBoard {plugin or 'tensor'} summaries (not converted)",
                             len(events))
            return
        from tensorboard.util import tensor_util

        key = f"tensors/{tag}"
        new = events[done.get(key, 0):]
        arrays = [(e, tensor_util.make_ndarray(e.tensor_proto)) for e in new]
        if plugin == "scalars":
            points = [(e.step, float(a.item()), math.nan, e.wall_time) for e, a in arrays]
        else:
            points = [(e.step, text_element(a), math.nan, e.wall_time) for e, a in arrays]
        name = tag.removesuffix("/text_summary") if plugin == "text" else tag
        self._add(collected, name, entry, "metric" if plugin == "scalars" else "text", points)
        read[key] = len(events)

    def _add(self, collected: Collected, tag: str, entry: str | None, kind: str,
             points: list[Point]) -> None:
        name, context = tag_to_sequence(tag, entry)
        if not collected.add(name, context, points, kind):
            self.report.skip(f"TensorBoard {kind} points whose tag is already used by another "
                             "kind", len(points))


def text_element(array: Any) -> Any:
    """A text summary (a string, or a table of strings, as TensorBoard shows it) as Text."""
    from ..objects import Text

    cells = [c.decode("utf-8", "replace") if isinstance(c, bytes) else str(c)
             for c in array.reshape(-1).tolist()]
    if array.ndim <= 1:
        return Text("\n".join(cells))
    width = array.shape[-1]
    rows = [" | ".join(cells[i:i + width]) for i in range(0, len(cells), width)]
    return Text("\n".join(rows))


def distribution_element(event: Any) -> Any:
    """A TensorBoard histogram (uneven buckets) as a Distribution of even bins."""
    from ..objects import Distribution

    histo = event.histogram_value
    counts, bin_range = even_histogram(list(histo.bucket_limit), list(histo.bucket),
                                       histo.min, histo.max)
    return Distribution(hist=counts, bin_range=bin_range)


def even_histogram(limits: list[float], counts: list[float], lo: float, hi: float,
                   bins: int = 64) -> tuple[Any, tuple[float, float]]:
    """Buckets with right edges ``limits`` spread evenly over ``bins`` bins in [lo, hi]."""
    import numpy as np

    limits_a, counts_a = np.asarray(limits, float), np.asarray(counts, float)
    if not hi > lo:  # every sample had one value: one bin around it, as np.histogram does
        return np.array([counts_a.sum()]), (lo - 0.5, hi + 0.5)
    left = np.clip(np.concatenate([[-np.inf], limits_a[:-1]]), lo, hi)
    right = np.clip(limits_a, lo, hi)
    edges = np.linspace(lo, hi, bins + 1)
    out = np.zeros(bins)
    for start, end, count in zip(left, right, counts_a, strict=True):
        if not count:
            continue
        if end <= start:  # all of the bucket sits on one value
            out[min(int(np.searchsorted(edges, start, side="right")) - 1, bins - 1)] += count
            continue
        overlap = np.clip(np.minimum(edges[1:], end) - np.maximum(edges[:-1], start), 0, None)
        out += count * overlap / (end - start)
    return out, (lo, hi)


def image_element(event: Any) -> Any:
    """A TensorBoard image (already PNG or JPEG) as an Image, its bytes kept as they are."""
    import io

    from PIL import Image as PILImage

    from ..objects import EncodedPoint

    data = event.encoded_image_string
    with PILImage.open(io.BytesIO(data)) as pil:
        fmt, mode, (width, height) = (pil.format or "png").lower(), pil.mode, pil.size
    meta = {"caption": "", "format": "jpeg" if fmt == "jpg" else fmt, "width": width,
            "height": height, "mode": mode}
    return EncodedPoint("image", False, [(meta, bytes(data))])


def audio_element(event: Any) -> Any:
    """A TensorBoard audio clip (WAV bytes) as an Audio."""
    from ..objects import Audio

    fmt = (event.content_type or "audio/wav").split("/")[-1].replace("x-", "")
    return Audio(bytes(event.encoded_audio_string), format=fmt or "wav",
                 rate=event.sample_rate or None)


ELEMENTS = {"distribution": distribution_element, "image": image_element,
            "audio": audio_element}


def require_tensorboard() -> Any:
    """TensorBoard's event accumulator module; ConvertError when tensorboard is missing."""
    try:
        from tensorboard.backend.event_processing import event_accumulator
    except ImportError as exc:
        raise ConvertError(f"Converting TensorBoard logs needs the tensorboard package ({exc}):"
                           " pip install 'aim-core[tensorboard]'") from None
    return event_accumulator


_GETTERS = {"histograms": "Histograms", "images": "Images", "audio": "Audio",
            "scalars": "Scalars", "tensors": "Tensors"}
_VALUE_KINDS = {"simple_value": "Scalars", "histo": "Histograms", "image": "Images",
                "audio": "Audio", "tensor": "Tensors"}


def session_hparams(acc: Any) -> dict[str, Any]:
    """The hyperparameters of TensorBoard's HParams plugin (torch ``add_hparams``, Lightning)."""
    try:
        contents = acc.PluginTagToContent("hparams")
    except KeyError:
        return {}
    from tensorboard.plugins.hparams import plugin_data_pb2

    found: dict[str, Any] = {}
    for content in contents.values():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        if data.WhichOneof("data") != "session_start_info":
            continue
        for name, value in data.session_start_info.hparams.items():
            kind = value.WhichOneof("kind")
            if kind in ("number_value", "string_value", "bool_value"):
                found[name] = to_json(getattr(value, kind))
    return found


def check_records(path: Path, acc: Any) -> tuple[int, str | None]:
    """Return how many bytes hold whole records, and why the file is damaged (or None).

    TensorBoard's reader stops quietly at a damaged record; this walks the record frames
    and checks that the reader got as far as the last event that carries a summary.
    """
    offsets, end, problem = _record_offsets(path)
    if problem:
        return end, problem
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto import event_pb2

    with open(path, "rb") as f:
        for offset in reversed(offsets):
            f.seek(offset)
            length = struct.unpack("<Q", f.read(8))[0]
            f.seek(offset + 12)
            try:
                event = event_pb2.Event.FromString(f.read(length))
            except DecodeError:
                return end, _DAMAGED
            if event.HasField("summary") and event.summary.value:
                return end, None if _was_read(acc, event) else _DAMAGED
    return end, None


_DAMAGED = ("a damaged record (failed checksum) stopped TensorBoard's reader; the events "
            "before it were converted")


def _was_read(acc: Any, event: Any) -> bool:
    value = event.summary.value[0]
    kind = value.WhichOneof("value")
    getter = _VALUE_KINDS.get(kind or "")
    if getter is None:
        return True  # a kind the accumulator does not keep: nothing to compare with
    tag = value.tag or (value.node_name if kind == "tensor" else "")
    try:
        items = getattr(acc, getter)(tag)
    except KeyError:
        return False
    return bool(items) and items[-1].step == event.step and items[-1].wall_time == event.wall_time


def _record_offsets(path: Path) -> tuple[list[int], int, str | None]:
    """Offsets of the whole records, where they end, and a problem with the framing.

    Only the length fields are walked; the length checksum is checked on the first and
    last record and where the walk runs past the end, which tells a file that is not an
    event file (or is damaged) from one whose last record is still being written.
    """
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    offsets: list[int] = []
    size = path.stat().st_size
    if size == 0:
        return offsets, 0, None
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:

        def header_ok(pos: int) -> bool:
            return masked_crc32c(data[pos:pos + 8]) == struct.unpack_from("<I", data, pos + 8)[0]

        pos = 0
        while pos + 12 <= size:
            length = struct.unpack_from("<Q", data, pos)[0]
            if pos + _RECORD_OVERHEAD + length > size:
                if not header_ok(pos):
                    return offsets, pos, f"not an event file, or damaged at byte {pos}"
                break  # a record still being written
            offsets.append(pos)
            pos += _RECORD_OVERHEAD + length
        for first_or_last in {offsets[0], offsets[-1]} if offsets else ():
            if not header_ok(first_or_last):
                return [], 0, f"not an event file, or damaged at byte {first_or_last}"
    return offsets, pos, None


def convert_tensorboard(logdir: str | os.PathLike, repo: Repo, *, experiment: str | None = None,
                        flat: bool = False, progress: ProgressFactory | None = None
                        ) -> ConvertReport:
    """Convert every run folder under ``logdir`` into ``repo``; see the module docstring."""
    report = ConvertReport(SOURCE)
    root = Path(logdir).expanduser().resolve()
    if not root.is_dir():
        raise ConvertError(f"No folder {root}: give the folder that holds the TensorBoard "
                           "run folders (or event files).")
    converter = TensorBoardConverter(root, repo, experiment, flat, report)
    folders = converter.folders()
    if not folders:
        report.fail(str(root), "no event files (events.out.tfevents.*) found")
        return report
    with progress_bar(progress, len(folders)) as bar:
        convert_each(folders, converter.convert, lambda f: str(f.path), report, bar)
    return report
