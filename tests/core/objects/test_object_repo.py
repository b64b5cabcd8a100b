"""Blob files follow their runs through rm, cp, mv and reindex; converters write objects."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from aim_core import Distribution, Image, Repo, Run, Text
from aim_core.objects import EncodedPoint
from aim_core.storage.importer import write_run

BIG = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)  # > 64 KiB
OTHER = np.random.default_rng(1).integers(0, 256, (200, 200, 3), dtype=np.uint8)


def blob_names(repo_path):
    folder = repo_path / ".aim_core" / "blobs"
    return sorted(p.name for p in folder.iterdir() if len(p.name) == 64) if folder.exists() else []


def image_run(repo_path, *arrays):
    with Run(repo=repo_path) as run:
        for step, array in enumerate(arrays):
            run.track(Image(array), name="big", step=step)
    return run.hash


def read_big(repo_path, run_hash):
    seq = Repo(repo_path).get_run(run_hash).get_image_sequence("big")
    return [np.asarray(v.to_pil_image()) for v in seq.values.values_list()]


def test_a_blob_goes_with_the_last_run_that_uses_it(repo_path):
    first = image_run(repo_path, BIG, OTHER)
    second = image_run(repo_path, BIG)
    assert len(blob_names(repo_path)) == 2
    repo = Repo(repo_path)
    assert repo.delete_run(first)
    assert len(blob_names(repo_path)) == 1  # OTHER was only in the first run
    assert np.array_equal(read_big(repo_path, second)[0], BIG)
    assert repo.delete_run(second)
    assert blob_names(repo_path) == []


def test_copy_and_move_take_blobs_along(repo_path, tmp_path):
    run_hash = image_run(repo_path, BIG, OTHER)
    dest = tmp_path / "dest"
    Repo(dest, init=True)
    ok, failed = Repo(repo_path).copy_runs([run_hash], dest)
    assert ok and not failed
    assert len(blob_names(dest)) == 2
    Repo(repo_path).delete_run(run_hash)
    assert blob_names(repo_path) == []
    assert [a.shape for a in read_big(dest, run_hash)] == [BIG.shape, OTHER.shape]
    third = tmp_path / "third"
    Repo(third, init=True)
    ok, _ = Repo(dest).move_runs([run_hash], third)
    assert ok and blob_names(dest) == [] and len(blob_names(third)) == 2
    assert np.array_equal(read_big(third, run_hash)[1], OTHER)


def test_reindex_restores_lost_blob_links(repo_path):
    run_hash = image_run(repo_path, BIG)
    links = repo_path / ".aim_core" / "blobs" / "runs" / run_hash
    for link in links.iterdir():
        os.unlink(link)
    Repo(repo_path).reindex()
    assert len(os.listdir(links)) == 1
    assert np.array_equal(read_big(repo_path, run_hash)[0], BIG)


def test_write_run_imports_object_sequences(repo_path):
    Repo(repo_path, init=True)
    meta, data = Text("already encoded").to_storage()
    write_run(repo_path, "imported1", {"name": "converted", "creation_time": 100.0}, {}, [
        ("loss", {}, "metric", [(0, 1.0, None, 100.0)]),
        ("samples", {"subset": "val"}, "image",
         [(0, Image(BIG), 0, 101.0), (3, [Image(OTHER), Image(BIG)], None, 102.0)]),
        ("notes", {}, "text", [(1, EncodedPoint("text", False, [(meta, data)]), None, 103.0)]),
        ("w", {}, "distribution", [(7, Distribution(hist=[1, 2], bin_range=(0, 1)), 2.0, 104.0)]),
    ])
    repo = Repo(repo_path)
    run = repo.get_run("imported1")
    samples = run.get_image_sequence("samples", {"subset": "val"})
    assert samples.steps.tolist() == [0, 3] and samples.timestamps.tolist() == [101.0, 102.0]
    assert np.array_equal(np.asarray(samples.values[1][0].to_pil_image()), OTHER)
    assert samples.epochs[0] == 0.0 and math.isnan(samples.epochs[1])
    assert run.get_text_sequence("notes").values.first()[1].data == "already encoded"
    assert run.get_distribution_sequence("w").values.first()[1].weights.tolist() == [1.0, 2.0]
    kinds = {s["name"]: (s["kind"], s["count"]) for s in repo.catalog.get("imported1")["sequences"]}
    assert kinds == {"loss": ("metric", 1), "samples": ("image", 2), "notes": ("text", 1),
                     "w": ("distribution", 1)}
    assert len(blob_names(repo_path)) == 2
    with pytest.raises(Exception, match="already exists"):
        write_run(repo_path, "imported1", {}, {}, [])
    assert len(blob_names(repo_path)) == 2
