"""Every object type through a real repo: track, close, reopen, read back."""

from __future__ import annotations

import io
import logging
import math
import wave

import numpy as np
import pytest

from aim_core import Audio, Distribution, Figure, Image, Repo, Run, Text
from aim_core.objects import EncodedPoint, Images, Texts

QUIET = {"system_tracking_interval": None, "capture_terminal_logs": False}  # counts exact sequences

RGB = np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)


def reopened(repo_path, run_hash):
    """The run as another process sees it: read-only, from the files."""
    return Repo(repo_path).get_run(run_hash)


def pixels(image):
    return np.asarray(image.to_pil_image())


def test_images_every_input_form_round_trip(repo_path, tmp_path):
    from PIL import Image as PILImage
    torch = pytest.importorskip("torch")
    path = tmp_path / "in.png"
    PILImage.fromarray(RGB).save(path)
    forms = {
        "uint8": RGB, "float": RGB / 255.0, "pil": PILImage.fromarray(RGB), "path": str(path),
        "tensor": torch.from_numpy(RGB).permute(2, 0, 1).float() / 255,
    }
    with Run(repo=repo_path, **QUIET) as run:
        for step, value in enumerate(forms.values()):
            run.track(Image(value, caption=f"form {step}"), name="forms", step=step)
        run_hash = run.hash
    seq = reopened(repo_path, run_hash).get_image_sequence("forms")
    assert isinstance(seq, Images) and seq.count == len(forms)
    for step, (image, epoch, timestamp) in seq.data.items():
        assert image.caption == f"form {step}" and epoch is None and timestamp > 0
        assert np.array_equal(pixels(image), RGB), list(forms)[step]


def test_every_type_round_trips_with_contexts_epochs_and_default_steps(repo_path):
    go = pytest.importorskip("plotly.graph_objects")
    tone = (np.sin(np.arange(800) / 5) * 10_000).astype(np.int16)
    with Run(repo=repo_path, **QUIET) as run:
        for epoch in range(3):
            run.track(Text(f"prediction {epoch}"), name="preds", epoch=epoch,
                      context={"subset": "val"})
            run.track(Distribution(np.arange(10) * epoch, bin_count=5), name="fc1",
                      context={"type": "data", "params": "weights"})
            run.track(Audio(tone * (epoch + 1) // 3, rate=8000, caption=f"clip {epoch}"),
                      name="speech")
            run.track(Figure(go.Figure(go.Bar(y=[epoch, 1]))), name="bars")
        run_hash = run.hash
    run = reopened(repo_path, run_hash)
    texts = run.get_text_sequence("preds", {"subset": "val"})
    assert [(s, t.data, e) for s, (t, e, _) in texts.data.items()] == [
        (0, "prediction 0", 0.0), (1, "prediction 1", 1.0), (2, "prediction 2", 2.0)]
    assert run.get_text_sequence("preds") is None  # another context
    assert run.get_image_sequence("preds", {"subset": "val"}) is None  # another type
    dists = run.get_distribution_sequence("fc1", {"type": "data", "params": "weights"})
    counts, edges = dists.values.last()[1].to_np_histogram()
    expected = np.histogram(np.arange(10) * 2, bins=5)
    assert np.array_equal(counts, expected[0]) and np.allclose(edges, expected[1])
    audio = run.get_audio_sequence("speech").values.first()[1]
    assert audio.caption == "clip 0" and audio.format == "wav"
    with wave.open(audio.get()) as w:
        assert (w.getframerate(), w.getnframes()) == (8000, 800)
    figure = run.get_figure_sequence("bars").values.last()[1].to_plotly_figure()
    assert list(figure.data[0].y) == [2, 1]


def test_lists_are_one_point_of_several_elements(repo_path):
    batch = [Image(RGB, caption="a"), Image(RGB[::-1], caption="b"), Image(RGB[:, ::-1])]
    with Run(repo=repo_path, **QUIET) as run:
        run.track(batch, name="batch", step=5)
        batch.append(Image(RGB))  # the tracked list was copied
        run.track((Text("x"), Text("y")), name="pair")
        run.track(Image(RGB, caption="single"), name="batch", step=6)
        run_hash = run.hash
    seq = reopened(repo_path, run_hash).get_image_sequence("batch")
    (step5, (images, _, _)), (step6, (single, _, _)) = seq.data.items()
    assert (step5, step6) == (5, 6)
    assert [i.caption for i in images] == ["a", "b", ""] and single.caption == "single"
    assert np.array_equal(pixels(images[1]), RGB[::-1])
    assert seq.record_length() == 3
    pair = reopened(repo_path, run_hash).get_text_sequence("pair").values.first()[1]
    assert [t.data for t in pair] == ["x", "y"]


def test_mixing_types_raises_and_keeps_what_was_tracked(repo_path):
    with Run(repo=repo_path, **QUIET) as run:
        run.track(Text("kept"), name="notes")
        run.track(0.5, name="loss")
        with pytest.raises(TypeError, match="holds text values"):
            run.track(Image(RGB), name="notes")
        with pytest.raises(TypeError, match="holds text"):
            run.track(1.0, name="notes")
        with pytest.raises(TypeError, match="holds metric"):
            run.track(Text("no"), name="loss")
        with pytest.raises(TypeError, match="'mixed' must hold elements of one type"):
            run.track([Text("a"), Image(RGB)], name="mixed")
        with pytest.raises(TypeError, match="'mixed'"):
            run.track([], name="mixed")
        with pytest.raises(TypeError, match="'mixed' must hold"):
            run.track([Text("a"), "plain str"], name="mixed")
        with pytest.raises(TypeError, match="'mixed'"):
            run.track(["plain str", Text("a")], name="mixed")
        run_hash = run.hash
    run = reopened(repo_path, run_hash)
    assert [t.data for t in run.get_text_sequence("notes").values.values_list()] == ["kept"]
    assert run.get_metric("loss").values.tolist() == [0.5]
    assert [s.name for s in run.sequences()] == ["notes", "loss"]


def test_a_closed_run_reopened_appends_after_its_last_step(repo_path):
    with Run(repo=repo_path, **QUIET) as run:
        run.track(Text("first"), name="log")
        run.track(Text("second"), name="log")
        run_hash = run.hash
    with Run(run_hash, repo=repo_path, **QUIET) as run:
        run.track(Text("third"), name="log")
        run.track(Text("second, again"), name="log", step=1)  # replaces step 1 for readers
    seq = reopened(repo_path, run_hash).get_text_sequence("log")
    assert [(s, t.data) for s, (t, _, _) in seq.data.items()] == [
        (0, "first"), (1, "second, again"), (2, "third")]
    assert (seq.count, seq.first_step, seq.last_step) == (3, 0, 2)
    entry = Repo(repo_path).catalog.get(run_hash)
    assert [s for s in entry["sequences"] if s["name"] == "log"] == [
        {"name": "log", "context": {}, "kind": "text", "count": 3, "first_step": 0,
         "last_step": 2}]


def test_a_live_run_reads_its_buffered_elements(repo_path):
    run = Run(repo=repo_path, **QUIET, flush_interval=3600)
    run.track(Text("buffered"), name="t")
    image = Image(RGB, caption="not yet encoded")
    run.track(image, name="i")
    assert run.get_text_sequence("t").values.first()[1].data == "buffered"
    live = run.get_image_sequence("i").values.first()[1]
    assert live.caption == "not yet encoded" and np.array_equal(pixels(live), RGB)
    run.flush()
    run.track(Text("later"), name="t")
    assert [t.data for t in run.get_text_sequence("t").values.values_list()] == [
        "buffered", "later"]
    run.close()


def test_log_records(repo_path):
    with Run(repo=repo_path, **QUIET) as run:
        run.log_info("starting", dataset="mnist")
        run.log_warning("lr is high")
        run.log_error("diverged", loss=float("inf"))
        run.log_debug("details")
        line = run.log_info.__code__.co_firstlineno  # noqa: F841 - a line in this file
        run_hash = run.hash
    records = reopened(repo_path, run_hash).get_log_records()
    values = records.values.values_list()
    assert [(r.message, r.level) for r in values] == [
        ("starting", logging.INFO), ("lr is high", logging.WARNING),
        ("diverged", logging.ERROR), ("details", logging.DEBUG)]
    assert values[0].extra_args == {"dataset": "mnist"}
    assert values[2].extra_args == {"loss": "inf"}  # JSON cannot hold inf: kept as text
    assert values[0].logger_info[0] == __file__
    assert values[1].json()["log_level"] == "WARNING"
    assert reopened(repo_path, run_hash).get_text_sequence("__log_records") is None


def test_encoded_points_are_stored_as_given(repo_path):
    meta, data = Text("from the wire").to_storage()
    with Run(repo=repo_path, **QUIET) as run:
        run.track(EncodedPoint("text", True, [(meta, data), (meta, b"second")]), name="remote")
        run_hash = run.hash
    texts = reopened(repo_path, run_hash).get_text_sequence("remote").values.first()[1]
    assert [t.data for t in texts] == ["from the wire", "second"]


def test_large_payloads_live_in_blob_files(repo_path):
    noise = np.random.default_rng(1).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    with Run(repo=repo_path, **QUIET) as run:
        run.track(Image(noise), name="big", step=0)
        run.track(Image(noise), name="big", step=1)  # same bytes: one file
        run.track(Text("x" * 100_000), name="long")
        run_hash = run.hash
    blobs = repo_path / ".aim_core" / "blobs"
    assert len([p for p in blobs.iterdir() if len(p.name) == 64]) == 2
    run = reopened(repo_path, run_hash)
    images = run.get_image_sequence("big").values.values_list()
    assert all(np.array_equal(pixels(i), noise) for i in images)
    assert run.get_text_sequence("long").values.first()[1].data == "x" * 100_000


def test_sequences_and_collect_sequence_info_list_every_type(repo_path):
    with Run(repo=repo_path, **QUIET) as run:
        run.track(1.0, name="loss", context={"subset": "train"})
        run.track(Image(RGB), name="samples", context={"subset": "val"})
        run.track(Text("t"), name="notes")
        run.log_info("hi")
    repo = Repo(repo_path)
    run = repo.get_run(run.hash)
    kinds = {type(s).__name__: s.name for s in run.sequences()}
    assert kinds == {"Metric": "loss", "Images": "samples", "Texts": "notes",
                     "LogRecords": "__log_records"}
    assert [s.name for s in run.sequences("images")] == ["samples"]
    info = repo.collect_sequence_info(["metric", "images", "texts"])
    assert info == {"metric": {"loss": [{"subset": "train"}]},
                    "images": {"samples": [{"subset": "val"}]}, "texts": {"notes": [{}]}}
    assert set(repo.collect_sequence_info(None)) == {"metric", "image", "text", "log_record"}


def test_texts_query_reads_only_matching_runs(repo_path):
    hashes = []
    for lr in (1e-4, 1e-2):
        with Run(repo=repo_path, **QUIET) as run:
            run["hparams"] = {"lr": lr}
            run.track([Image(RGB)], name="samples", context={"subset": "val"})
            run.track(Image(RGB), name="samples", context={"subset": "train"})
            run.track(Text(f"lr {lr}"), name="notes")
            hashes.append(run.hash)
    repo = Repo(repo_path)
    found = list(repo.query_images('images.name == "samples" and images.context.subset == "val"'
                                   " and run.hparams.lr > 1e-3"))
    assert [(s.run.hash, s.context.to_dict()) for s in found] == [(hashes[1], {"subset": "val"})]
    texts = repo.query_texts("texts.count == 1")
    assert len(texts) == 2 and all(isinstance(s, Texts) for s in texts)
    assert [g.hash for g in texts.iter_runs()] == hashes
    assert len(repo.query_images("")) == 4 and len(repo.query_metrics("")) == 0
    assert len(repo.query_distributions("")) == 0 and len(repo.query_audios("")) == 0
    assert len(repo.query_figure_objects("")) == 0
    assert math.isclose(found[0].run["hparams", "lr"], 1e-2)


def test_wav_bytes_from_a_file_object_round_trip(repo_path):
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.arange(50, dtype="<i2").tobytes())
    with Run(repo=repo_path, **QUIET) as run:
        run.track(Audio(io.BytesIO(buffer.getvalue()), format="wav"), name="clip")
        run_hash = run.hash
    audio = reopened(repo_path, run_hash).get_audio_sequence("clip").values.first()[1]
    assert audio.get().read() == buffer.getvalue()
    assert audio.to_numpy()[1].tolist() == list(range(50))


def _matplotlib_figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1), dpi=20)
    ax.plot([0, 1])
    return fig


def _forms(tmp_path):
    """Every accepted input form of every type: (kind, element, check of what is read)."""
    from PIL import Image as PILImage
    torch = pytest.importorskip("torch")
    go = pytest.importorskip("plotly.graph_objects")
    png, wav = tmp_path / "a.png", tmp_path / "b.wav"
    PILImage.fromarray(RGB).save(png)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.arange(8, dtype="<i2").tobytes())
    wav.write_bytes(buffer.getvalue())
    same = lambda e: np.array_equal(pixels(e), RGB)  # noqa: E731
    return [
        ("image", Image(RGB), same), ("image", Image(RGB / 255.0), same),
        ("image", Image(RGB.astype(bool)), lambda e: pixels(e).max() == 255),
        ("image", Image(PILImage.fromarray(RGB)), same), ("image", Image(str(png)), same),
        ("image", Image(png), same), ("image", Image(torch.from_numpy(RGB).permute(2, 0, 1)), same),
        ("image", Image(_matplotlib_figure()), lambda e: e.size == (20, 20)),
        ("image", Image(RGB, format="jpeg"), lambda e: e.format == "jpeg"),
        ("text", Text("t"), lambda e: e.data == "t"),
        ("distribution", Distribution([1.0, 2.0], bin_count=2),
         lambda e: e.weights.tolist() == [1.0, 1.0]),
        ("distribution", Distribution(distribution=torch.ones(4), bin_count=1),
         lambda e: e.weights.tolist() == [4.0]),
        ("distribution", Distribution(hist=[3, 4], bin_range=(0, 1)),
         lambda e: e.ranges.tolist() == [0.0, 0.5, 1.0]),
        ("audio", Audio(np.arange(8, dtype=np.int16), rate=8000),
         lambda e: e.to_numpy()[1].tolist() == list(range(8))),
        ("audio", Audio(buffer.getvalue(), format="wav"), lambda e: e.data == wav.read_bytes()),
        ("audio", Audio(io.BytesIO(buffer.getvalue()), format="wav"),
         lambda e: e.data == wav.read_bytes()),
        ("audio", Audio(str(wav)), lambda e: e.format == "wav"),
        ("figure", Figure(go.Figure(go.Bar(y=[1]))), lambda e: e.to_dict()["data"][0]["y"] == [1]),
        ("figure", Figure({"data": [{"type": "bar", "y": [2]}]}),
         lambda e: list(e.to_plotly_figure().data[0].y) == [2]),
    ]


def test_every_input_form_of_every_type_round_trips_through_a_repo(repo_path, tmp_path):
    forms = _forms(tmp_path)
    with Run(repo=repo_path, **QUIET) as run:
        for i, (kind, element, _) in enumerate(forms):
            run.track(element, name=f"form-{i}", context={"kind": kind})
        run_hash = run.hash
    stored = reopened(repo_path, run_hash)
    for i, (kind, _, check) in enumerate(forms):
        seq = stored._object_sequence(kind, f"form-{i}", {"kind": kind})
        assert seq is not None and seq.count == 1, (i, kind)
        assert check(seq.values.first()[1]), (i, kind)
