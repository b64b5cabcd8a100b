"""Object sequences (images, texts, distributions, log records) travel to the server."""

from __future__ import annotations

import numpy as np
import pytest

from aim_core import Distribution, Image, Repo, Run, Text
from aim_core.errors import RemoteError

RGB = np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)


def track_objects(repo) -> str:
    """The same object calls for a local and a remote run."""
    with Run(repo=repo, system_tracking_interval=None, capture_terminal_logs=False) as run:
        for step in range(5):
            run.track(Image(RGB // (step + 1), caption=f"sample {step}"), name="samples",
                      step=step, epoch=step // 2, context={"subset": "val"})
            run.track([Text(f"a {step}"), Text(f"b {step}")], name="preds", step=step)
            run.track(Distribution(np.arange(20) * step, bin_count=4), name="fc1",
                      context={"type": "weights"})
            run.track(0.5 * step, name="loss")
        run.log_info("done", epochs=2)
    return run.hash


def read_objects(repo, run_hash: str) -> dict:
    """Everything a reader sees of those sequences."""
    run = Repo(repo).get_run(run_hash)
    images = run.get_image_sequence("samples", {"subset": "val"})
    texts = run.get_text_sequence("preds")
    dists = run.get_distribution_sequence("fc1", {"type": "weights"})
    records = run.get_log_records()
    return {
        "images": [(s, np.asarray(image.to_pil_image()).tolist(), image.caption, epoch)
                   for s, (image, epoch, _) in images.data.items()],
        "texts": [(s, [t.data for t in value]) for s, (value, _, _) in texts.data.items()],
        "dists": [(s, d.to_np_histogram()[0].tolist()) for s, (d, _, _) in dists.data.items()],
        "records": [(r.message, r.level) for _, (r, _, _) in records.data.items()],
        "loss": run.get_metric("loss").values.tolist(),
    }


def test_object_sequences_stored_by_the_server_read_like_local_ones(server, tmp_path):
    local_hash = track_objects(tmp_path / "local")
    remote_hash = track_objects(server.url)
    local = read_objects(tmp_path / "local", local_hash)
    assert read_objects(server.repo, remote_hash) == local
    assert len(local["images"]) == 5 and local["texts"][4] == (4, ["a 4", "b 4"])


def test_reading_objects_through_the_server_says_where_to_read_them(server):
    run_hash = track_objects(server.url)
    run = Repo(server.url).get_run(run_hash)
    assert run.get_metric("loss").values.tolist() == [0.0, 0.5, 1.0, 1.5, 2.0]
    with pytest.raises(RemoteError, match="server's machine"):
        run.get_image_sequence("samples", {"subset": "val"})
