"""``aim-core convert tensorboard``: event files written by torch's SummaryWriter, read back."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorboard")
torch_tb = pytest.importorskip("torch.utils.tensorboard")

from convert_cli import by_name, entries, run_cli  # noqa: E402

from aim_core import Distribution, Repo  # noqa: E402
from aim_core.convert.tensorboard import (  # noqa: E402
    convert_tensorboard,
    even_histogram,
    tag_to_sequence,
)


def write_scalars(folder: Path, tags: dict[str, list[float]], start: int = 0,
                  walltime: float | None = 1000.0) -> None:
    """One SummaryWriter in ``folder``: tag -> values at steps start, start+1, ..."""
    writer = torch_tb.SummaryWriter(str(folder))
    for tag, values in tags.items():
        for i, value in enumerate(values):
            step = start + i
            writer.add_scalar(tag, value, step,
                              walltime=None if walltime is None else walltime + step)
    writer.close()


def points(metric) -> list[tuple]:
    return list(zip(metric.steps.tolist(), metric.values.tolist(),
                    metric.timestamps.tolist(), strict=True))


def f32(value: float) -> float:
    """What TensorBoard stores: a float32."""
    return float(np.float32(value))


def test_tag_names_become_names_and_contexts():
    assert tag_to_sequence("loss") == ("loss", {})
    assert tag_to_sequence("a/b/loss") == ("loss", {"tag": "a/b"})
    assert tag_to_sequence("train/loss") == ("loss", {"subset": "train"})
    assert tag_to_sequence("Validation/acc") == ("acc", {"subset": "val"})
    assert tag_to_sequence("model/eval/f1") == ("f1", {"subset": "eval", "tag": "model"})
    assert tag_to_sequence("Loss/train") == ("Loss", {"subset": "train"})
    assert tag_to_sequence("a/Loss/test") == ("Loss", {"subset": "test", "tag": "a"})
    assert tag_to_sequence("train") == ("train", {})
    assert tag_to_sequence("train/val") == ("val", {"subset": "train"})
    assert tag_to_sequence("epoch_loss", "validation") == ("epoch_loss", {"subset": "val"})
    assert tag_to_sequence("loss", "gpu0") == ("loss", {"entry": "gpu0"})
    assert tag_to_sequence("train/loss", "test") == ("loss", {"subset": "train",
                                                              "entry": "test"})


def test_scalars_keep_steps_times_tags_and_hparams(tmp_path, repo):
    logdir = tmp_path / "logs"
    losses = [1.0 / (s + 1) for s in range(50)]
    write_scalars(logdir / "run_a", {"train/loss": losses, "val/loss": losses[:5],
                                     "a/b/acc": [0.1 * s for s in range(7)], "lr": [3e-4]})
    for sub, scale in (("train", 1.0), ("validation", 2.0)):  # Keras' layout
        write_scalars(logdir / "run_b" / sub, {"epoch_loss": [scale, scale / 2]},
                      walltime=2000.0)
    writer = torch_tb.SummaryWriter(str(logdir / "run_a"))
    writer.add_hparams({"lr": 0.1, "optimizer": "adam", "layers": 3}, {"hp/score": 0.5})
    writer.close()

    report = convert_tensorboard(logdir, repo)

    assert report.ok, report.text()
    assert (report.runs_new, report.points) == (2, 50 + 5 + 7 + 1 + 4 + 1)
    runs = by_name(repo)
    assert set(runs) == {"run_a", "run_b"}
    run_a = runs["run_a"]
    assert run_a.experiment == "logs" and run_a.status == "finished"
    assert run_a["hparams"] == {"lr": 0.1, "optimizer": "adam", "layers": 3}
    assert points(run_a.get_metric("loss", {"subset": "train"})) == [
        (s, f32(v), 1000.0 + s) for s, v in enumerate(losses)]
    assert points(run_a.get_metric("loss", {"subset": "val"})) == [
        (s, f32(v), 1000.0 + s) for s, v in enumerate(losses[:5])]
    assert run_a.get_metric("acc", {"tag": "a/b"}).values.tolist() == [
        f32(0.1 * s) for s in range(7)]
    assert run_a.get_metric("lr").values.tolist() == [f32(3e-4)]
    assert math.isnan(run_a.get_metric("lr").epochs[0])
    assert run_a.creation_time == 1000.0 and run_a.end_time >= 1049.0
    run_b = runs["run_b"]
    assert points(run_b.get_metric("epoch_loss", {"subset": "train"})) == [
        (0, 1.0, 2000.0), (1, 0.5, 2001.0)]
    assert points(run_b.get_metric("epoch_loss", {"subset": "val"})) == [
        (0, 2.0, 2000.0), (1, 1.0, 2001.0)]


def test_converting_again_adds_only_what_is_new(tmp_path, repo):
    folder = tmp_path / "logs" / "run"
    writer = torch_tb.SummaryWriter(str(folder))
    for step in range(10):
        writer.add_scalar("loss", float(step), step, walltime=100.0 + step)
    writer.flush()
    first = convert_tensorboard(tmp_path / "logs", repo)
    for step in range(10, 25):
        writer.add_scalar("loss", float(step), step, walltime=100.0 + step)
    writer.flush()
    second = convert_tensorboard(tmp_path / "logs", repo)
    writer.close()
    before = entries(repo)
    third = convert_tensorboard(tmp_path / "logs", repo)

    assert (first.runs_new, first.points) == (1, 10)
    assert (second.runs_new, second.runs_updated, second.points) == (0, 1, 15)
    assert (third.runs_new, third.runs_updated, third.runs_unchanged, third.points) == (
        0, 0, 1, 0)
    assert entries(repo) == before
    (run,) = repo.iter_runs()
    loss = run.get_metric("loss")
    assert loss.steps.tolist() == list(range(25))
    assert loss.values.tolist() == [float(s) for s in range(25)]
    assert loss.timestamps.tolist() == [100.0 + s for s in range(25)]
    assert (run.creation_time, run.end_time) == (100.0, 124.0)


def test_a_new_event_file_in_a_converted_folder_is_added(tmp_path, repo):
    folder = tmp_path / "logs" / "run"
    write_scalars(folder, {"loss": [1.0, 2.0]})
    convert_tensorboard(tmp_path / "logs", repo)
    write_scalars(folder, {"loss": [3.0, 4.0]}, start=2)  # a resumed training: a new file

    report = convert_tensorboard(tmp_path / "logs", repo)

    assert (report.runs_updated, report.points) == (1, 2)
    (run,) = repo.iter_runs()
    assert run.get_metric("loss").values.tolist() == [1.0, 2.0, 3.0, 4.0]


def test_tensor_scalars_of_tensorflow_2_are_converted(tmp_path, repo):
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.util import tensor_util

    writer = torch_tb.SummaryWriter(str(tmp_path / "logs" / "tf2"))
    scalars = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))
    for step in range(3):
        value = Summary.Value(tag="eval/auc", metadata=scalars,
                              tensor=tensor_util.make_tensor_proto(np.float32(step / 4)))
        writer._get_file_writer().add_summary(Summary(value=[value]), step, 50.0 + step)
    writer.close()

    assert convert_tensorboard(tmp_path / "logs", repo).ok
    (run,) = repo.iter_runs()
    assert points(run.get_metric("auc", {"subset": "eval"})) == [
        (0, 0.0, 50.0), (1, 0.25, 51.0), (2, 0.5, 52.0)]


def test_histograms_images_text_and_audio_become_objects(tmp_path, repo):
    from tensorboard.backend.event_processing import event_accumulator as ea

    folder = tmp_path / "logs" / "run"
    writer = torch_tb.SummaryWriter(str(folder))
    writer.add_scalar("loss", 1.0, 0)
    for step in range(2):
        writer.add_histogram("train/weights", np.arange(10.0) * (step + 1), step,
                             walltime=10.0 + step)
    picture = np.zeros((3, 4, 6))
    picture[0, 1, 2] = 1.0
    writer.add_image("sample", picture, 5)
    writer.add_text("note", "hello", 3)
    writer.add_audio("clip", np.zeros(800), 2, sample_rate=8000)
    writer.add_pr_curve("pr", np.array([0, 1, 1]), np.array([0.1, 0.8, 0.6]), 0)
    writer.close()
    (events,) = folder.glob("events.out.tfevents.*")
    source = ea.EventAccumulator(str(events), size_guidance=ea.STORE_EVERYTHING_SIZE_GUIDANCE)
    png = source.Reload().Images("sample")[0].encoded_image_string

    report = convert_tensorboard(tmp_path / "logs", repo)

    assert report.ok, report.text()
    assert (report.sequences, report.points) == (5, 1 + 2 + 1 + 1 + 1)
    assert {r.split(" (")[0] for r in report.skipped} == {"TensorBoard pr_curves summaries"}
    (run,) = repo.iter_runs()
    dists = run.get_distribution_sequence("weights", {"subset": "train"})
    items = list(dists.data.items())
    assert [(step, timestamp) for step, (_, _, timestamp) in items] == [(0, 10.0), (1, 11.0)]
    for step, (dist, _, _) in items:
        assert dist.range == [0.0, 9.0 * (step + 1)]
        assert dist.weights.sum() == pytest.approx(10.0)
    ((step, (image, _, _)),) = run.get_image_sequence("sample").data.items()
    assert (step, image.format, image.size, image.data) == (5, "png", (6, 4), png)
    assert np.asarray(image.to_pil_image())[1, 2, 0] == 255
    ((step, (text, _, _)),) = run.get_text_sequence("note").data.items()
    assert (step, text.data) == (3, "hello")
    ((step, (clip, _, _)),) = run.get_audio_sequence("clip").data.items()
    assert step == 2 and clip.data[:4] == b"RIFF"
    assert convert_tensorboard(tmp_path / "logs", repo).runs_unchanged == 1


def test_uneven_histogram_buckets_are_spread_over_even_bins():
    counts, bin_range = even_histogram([1.0, 2.0, 3.0, 1e308], [1, 2, 3, 0], 0.5, 3.0, bins=5)
    assert bin_range == (0.5, 3.0)
    assert counts.tolist() == [1.0, 1.0, 1.0, 1.5, 1.5]
    single, bin_range = even_histogram([0.0, 1e308], [7, 0], 2.0, 2.0)
    assert (single.tolist(), bin_range) == ([7.0], (1.5, 2.5))
    assert Distribution(hist=single, bin_range=bin_range).range == [1.5, 2.5]


def test_a_corrupt_event_file_is_reported_and_the_rest_converted(tmp_path, repo):
    logdir = tmp_path / "logs"
    write_scalars(logdir / "good", {"loss": [float(s) for s in range(100)]})
    write_scalars(logdir / "flipped", {"loss": [float(s) for s in range(100)]})
    (flipped,) = (logdir / "flipped").iterdir()
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0xFF
    flipped.write_bytes(bytes(data))
    (logdir / "garbage").mkdir()
    (logdir / "garbage" / "events.out.tfevents.1.host").write_bytes(b"not an event file" * 9)

    result = run_cli("convert", "tensorboard", str(logdir), "--repo", str(repo.path),
                     "--no-progress")

    assert result.returncode == 1, result.stderr
    assert "FAILED" in result.stderr
    assert str(flipped) in result.stderr
    assert str(logdir / "garbage" / "events.out.tfevents.1.host") in result.stderr
    runs = by_name(Repo(repo.path))
    assert runs["good"].get_metric("loss").values.tolist() == [float(s) for s in range(100)]
    partial = runs["flipped"].get_metric("loss").values.tolist()
    assert 0 < len(partial) < 100 and partial == [float(s) for s in range(len(partial))]
    assert "garbage" not in runs
    again = run_cli("convert", "tensorboard", str(logdir), "--repo", str(repo.path),
                    "--no-progress")
    assert again.returncode == 1 and str(flipped) in again.stderr
    assert "0 new run(s), 0 updated" in again.stderr


def test_folders_deeper_than_two_levels_need_flat(tmp_path, repo):
    logdir = tmp_path / "logs"
    write_scalars(logdir / "exp" / "run1" / "train", {"loss": [1.0]})
    write_scalars(logdir / "exp" / "run2" / "train", {"loss": [2.0]})
    write_scalars(logdir / "top", {"loss": [3.0]})

    nested = convert_tensorboard(logdir, repo)
    assert nested.runs_new == 1 and sum(nested.skipped.values()) == 2
    flat = convert_tensorboard(logdir, Repo(repo.path.parent / "flat", init=True), flat=True)
    assert flat.runs_new == 3
    names = set(by_name(Repo(repo.path.parent / "flat")))
    assert names == {"top", "exp/run1/train", "exp/run2/train"}


def test_cli_converts_with_experiment_and_summary(tmp_path, repo):
    write_scalars(tmp_path / "logs" / "run", {"loss": [1.0, 2.0]})

    result = run_cli("convert", "tensorboard", str(tmp_path / "logs"), "--repo",
                     str(repo.path), "--experiment", "imported", "--no-progress")

    assert result.returncode == 0, result.stderr
    assert "1 new run(s)" in result.stderr and "2 point(s)" in result.stderr
    (run,) = Repo(repo.path).iter_runs()
    assert run.experiment == "imported"
    missing = run_cli("convert", "tensorboard", str(tmp_path / "nowhere"), "--repo",
                      str(repo.path))
    assert missing.returncode == 1 and "No folder" in missing.stderr
