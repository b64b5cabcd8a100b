"""``aim-core runs show`` and ``aim-core export --kind`` with object sequences, in a subprocess."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from aim_core import Audio, Distribution, Figure, Image, Run, Text
from aim_core.storage import flusher

AIM_CORE = Path(sys.executable).with_name("aim-core")
RGB = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)


def aim_core(*args: str, cwd: Path, check: int | None = 0) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "AIM_CORE_REPO"}
    done = subprocess.run([str(AIM_CORE), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    if check is not None:
        assert done.returncode == check, (done.stdout, done.stderr)
    return done


@pytest.fixture
def repo(tmp_path):
    go = pytest.importorskip("plotly.graph_objects")
    path = tmp_path / "repo"
    with Run(repo=path) as run:
        run.track(0.5, name="loss")
        for step in range(2):
            run.track([Image(RGB, caption="first"), Image(RGB[::-1], caption="<b>x</b>")],
                      name="samples", step=step, context={"subset": "val"})
            run.track(Text(f'line, with "quotes" {step}'), name="notes", step=step)
            run.track(Distribution(hist=[1, step], bin_range=(0, 2)), name="w", step=step)
        run.track(Audio(np.zeros(10, np.int16), rate=8000), name="../speech")
        run.track(Figure(go.Figure(go.Bar(y=[1]))), name="fig")
        run.log_warning("careful", batch=3)
    flusher.close_all()
    return path, run.hash


def test_runs_show_lists_object_sequences(repo, tmp_path):
    path, run_hash = repo
    out = aim_core("runs", "show", run_hash, "--repo", str(path), cwd=tmp_path).stdout
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:] if line[:2] == "  "}
    assert rows["samples"][1:5] == ['{"subset":"val"}', "image", "2", "0"]
    assert rows["notes"][2:4] == ["text", "2"] and rows["w"][2] == "distribution"
    assert rows["loss"][2] == "metric"
    data = json.loads(aim_core("runs", "show", run_hash, "--format", "json", "--repo",
                               str(path), cwd=tmp_path).stdout)
    kinds = {s["name"]: s["kind"] for s in data["sequences"]}
    assert kinds["fig"] == "figure" and kinds["__log_records"] == "log_record"


def test_export_texts_and_distributions_as_rows(repo, tmp_path):
    path, run_hash = repo
    done = aim_core("export", run_hash, "--kind", "text", "--format", "csv", "--repo",
                    str(path), cwd=tmp_path)
    rows = list(csv.DictReader(done.stdout.splitlines()))
    assert [(r["step"], r["text"]) for r in rows] == [("0", 'line, with "quotes" 0'),
                                                     ("1", 'line, with "quotes" 1')]
    assert "exported 2 element(s) of 1 sequence(s)" in done.stderr
    out = tmp_path / "w.json"
    aim_core("export", "--query", 'distributions.name == "w"', "--kind", "distribution",
             "--format", "json", "-o", str(out), "--repo", str(path), cwd=tmp_path)
    records = json.loads(out.read_text())
    assert [(r["step"], r["weights"], r["range_end"]) for r in records] == [
        (0, [1.0, 0.0], 2.0), (1, [1.0, 1.0], 2.0)]
    logs = json.loads(aim_core("export", run_hash, "--kind", "log_record", "--format", "json",
                               "--repo", str(path), cwd=tmp_path).stdout)
    assert logs[0]["level"] == "WARNING" and logs[0]["extra"] == {"batch": 3}


def test_export_images_audio_and_figures_as_files(repo, tmp_path):
    path, run_hash = repo
    folder = tmp_path / "out"
    aim_core("export", run_hash, "--kind", "image", "-o", str(folder), "--repo", str(path),
             cwd=tmp_path)
    index = list(csv.DictReader((folder / "index.csv").open()))
    assert [(r["step"], r["index"], r["caption"]) for r in index] == [
        ("0", "0", "first"), ("0", "1", "<b>x</b>"), ("1", "0", "first"), ("1", "1", "<b>x</b>")]
    assert index[0]["path"] == f"{run_hash}/samples/subset_val/0_0.png"
    assert np.array_equal(np.asarray(PILImage.open(folder / index[1]["path"])), RGB[::-1])
    aim_core("export", run_hash, "--kind", "audio", "-o", str(folder / "a"), "--repo",
             str(path), cwd=tmp_path)
    (audio,) = list(csv.DictReader((folder / "a" / "index.csv").open()))
    assert audio["path"] == f"{run_hash}/speech/-/0_0.wav"  # no way out of the folder
    assert (folder / "a" / audio["path"]).read_bytes()[:4] == b"RIFF"
    aim_core("export", run_hash, "--kind", "figure", "-o", str(folder / "f"), "--repo",
             str(path), cwd=tmp_path)
    figure = json.loads((folder / "f" / run_hash / "fig" / "-" / "0_0.json").read_text())
    assert figure["data"][0]["y"] == [1]


def test_export_object_errors(repo, tmp_path):
    path, run_hash = repo
    done = aim_core("export", run_hash, "--kind", "image", "--repo", str(path), cwd=tmp_path,
                    check=2)
    assert "-o FOLDER" in done.stderr
    done = aim_core("export", run_hash, "--kind", "text", "--format", "parquet", "--repo",
                    str(path), cwd=tmp_path, check=2)
    assert "csv or json" in done.stderr
    done = aim_core("export", "--query", "metric.name == 'x'", "--kind", "text", "--format",
                    "csv", "--repo", str(path), cwd=tmp_path, check=2)
    assert "texts.name" in done.stderr
    assert "--format" in aim_core("export", run_hash, "--repo", str(path), cwd=tmp_path,
                                  check=2).stderr
