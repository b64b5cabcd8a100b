"""``aim-core export --kind ...``: object sequences as rows (texts, distributions, log
records: csv or json) or as files in a folder (images, audio, figures, with ``index.csv``)."""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from ..query import context_text
from ..query.objects import query_objects
from ..repo import Repo
from ..spreadsheet import text_cell, text_row

ROW_KINDS = ("text", "distribution", "log_record")
FILE_KINDS = ("image", "audio", "figure")
KINDS = ROW_KINDS + FILE_KINDS
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")


def select_objects(repo: Repo, kind: str, hashes: Sequence[str] | None,
                   query: str | None) -> list[Any]:
    """The ``kind`` sequences of ``hashes`` (all of them), narrowed by an AimQL ``query``."""
    if query:
        wanted = set(hashes) if hashes is not None else None
        return [s for s in query_objects(repo, kind, query)
                if wanted is None or s.run.hash in wanted]
    return [s for run_hash in hashes or () for s in repo.get_run(run_hash).sequences(kind)]


def elements(sequences: list[Any], bar: Any) -> Iterator[tuple[Any, int, int, Any, Any, Any]]:
    """``(seq, step, index, element, epoch, timestamp)`` for every element, in order."""
    for seq in sequences:
        for step, (value, epoch, timestamp) in seq.data.items():
            for index, element in enumerate(value if isinstance(value, list) else [value]):
                yield seq, step, index, element, epoch, timestamp
        bar.update(1)


# -- rows: texts, distributions, log records --------------------------------------------------
def row_of(kind: str, element: Any) -> dict[str, Any]:
    """The exported fields of one element."""
    if kind == "text":
        return {"text": element.data}
    if kind == "distribution":
        lo, hi = element.range
        return {"bin_count": element.bin_count, "range_start": lo, "range_end": hi,
                "weights": element.weights.tolist()}
    return {"level": element.level_name, "message": element.message,
            "logged_at": element.timestamp, "extra": element.extra_args}


def export_rows(kind: str, sequences: list[Any], fmt: str, out: IO[str], bar: Any) -> int:
    """Write one row per element as csv (JSON in cells that hold lists) or a JSON array."""
    count = 0
    writer = None
    if fmt == "json":
        out.write("[")
    for seq, step, index, element, epoch, timestamp in elements(sequences, bar):
        record = {"run_hash": seq.run.hash, "name": seq.name,
                  "context": context_text(seq.context) if fmt == "csv" else seq.context.to_dict(),
                  "step": step, "index": index, "epoch": epoch, "timestamp": timestamp,
                  **row_of(kind, element)}
        if fmt == "json":
            out.write(("\n" if not count else ",\n") + json.dumps(record, default=_finite))
        else:
            if writer is None:
                writer = csv.DictWriter(out, list(record), lineterminator="\n")
                writer.writeheader()
            writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else
                             ("" if v is None else text_cell(v)) for k, v in record.items()})
        count += 1
    if fmt == "json":
        out.write("\n]\n")
    return count


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else str(value)


# -- files: images, audio, figures ------------------------------------------------------------
def export_files(kind: str, sequences: list[Any], folder: str, bar: Any) -> int:
    """Write each element as a file under ``folder/<run>/<name>/<context>/`` and list them
    all in ``folder/index.csv``; return how many files were written."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(root / "index.csv", "w", newline="", encoding="utf-8") as index_file:
        index = csv.writer(index_file, lineterminator="\n")
        index.writerow(["path", "run_hash", "name", "context", "step", "index", "epoch",
                        "timestamp", "caption"])
        for seq, step, position, element, epoch, timestamp in elements(sequences, bar):
            relative = Path(_safe(seq.run.hash), _safe(seq.name),
                            _safe(context_text(seq.context)),
                            f"{step}_{position}.{_suffix(kind, element)}")
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_file_bytes(kind, element))
            index.writerow(text_row([relative.as_posix(), seq.run.hash, seq.name,
                                     context_text(seq.context), step, position,
                                     "" if epoch is None else epoch, timestamp,
                                     getattr(element, "caption", "")]))
            count += 1
    return count


def _safe(text: str) -> str:
    """A file-name-safe version of a name or context (no path separators, no dot names)."""
    cleaned = _UNSAFE.sub("_", text).strip("._")
    return cleaned[:120] or "-"


def _suffix(kind: str, element: Any) -> str:
    if kind == "figure":
        return "json"
    return {"jpeg": "jpg"}.get(element.format, element.format) or "bin"


def _file_bytes(kind: str, element: Any) -> bytes:
    return element.data.encode("utf-8") if kind == "figure" else element.data
