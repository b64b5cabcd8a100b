"""Text, Distribution, Audio, Figure and LogRecord: constructors, encoding, reading back."""

from __future__ import annotations

import io
import logging
import math
import wave

import numpy as np
import pytest

from aim_core import Audio, Distribution, Figure, Text
from aim_core.objects import LogRecord, element_class


def stored(element):
    meta, data = element.to_storage()
    return type(element).from_storage(meta, data)


# -- Text -------------------------------------------------------------------------------------
def test_text_round_trip_utf8():
    text = Text("prédiction: 猫 🐈 \x00 end")
    meta, data = text.to_storage()
    assert (meta, data) == ({}, "prédiction: 猫 🐈 \x00 end".encode())
    assert stored(text).data == "prédiction: 猫 🐈 \x00 end"
    assert str(stored(Text("abc"))) == "abc"
    assert Text("a") == stored(Text("a")) and Text("a") != Text("b")


def test_text_rejects_non_strings():
    with pytest.raises(TypeError, match="str"):
        Text(b"bytes")
    with pytest.raises(TypeError):
        Text(3)


# -- Distribution -----------------------------------------------------------------------------
def test_distribution_from_samples_matches_numpy():
    samples = np.random.default_rng(1).normal(size=5000)
    dist = stored(Distribution(samples, bin_count=32))
    counts, edges = np.histogram(samples, bins=32)
    weights, ranges = dist.to_np_histogram()
    assert np.array_equal(weights, counts) and weights.dtype == np.float64
    assert np.allclose(ranges, edges)
    assert dist.bin_count == 32 and dist.range == [edges[0], edges[-1]]
    assert dist.json() == {"bin_count": 32, "range": [edges[0], edges[-1]]}
    assert len(Distribution(samples).to_storage()[1]) == 64 * 8  # float64 counts


def test_distribution_forms():
    hist = [1, 4, 2]
    dist = stored(Distribution(hist=hist, bin_range=(0, 3)))
    assert dist.weights.tolist() == [1.0, 4.0, 2.0]
    assert dist.ranges.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert Distribution.from_histogram(hist, (0, 3)) == dist
    samples = [1.0, 2.0, 2.5]
    assert Distribution(distribution=samples, bin_count=4) == Distribution(samples, 4)
    assert Distribution.from_samples(samples, 4) == Distribution(samples, 4)
    torch = pytest.importorskip("torch")
    tensor = torch.arange(10, dtype=torch.float16, requires_grad=True)
    assert stored(Distribution(tensor, bin_count=5)).weights.tolist() == [2.0] * 5


def test_distribution_leaves_out_non_finite_samples():
    dist = stored(Distribution([1.0, math.nan, 2.0, math.inf, 3.0], bin_count=2))
    assert dist.weights.sum() == 3
    assert dist.json()["non_finite"] == 2


@pytest.mark.parametrize("kwargs", [
    {},
    {"samples": [1], "hist": [1], "bin_range": (0, 1)},
    {"hist": [1, 2]},
    {"samples": [1, 2], "bin_count": 0},
    {"samples": [1, 2], "bin_count": 513},
    {"hist": list(range(600)), "bin_range": (0, 1)},
])
def test_distribution_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        Distribution(**kwargs)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"samples": [-1e308, 1e308]}, "wider than"),
    ({"samples": np.array([-np.finfo(np.float64).max, np.finfo(np.float64).max])}, "wider than"),
    ({"hist": [-1, 2, 3], "bin_range": (0, 1)}, "finite and not negative"),
    ({"hist": [np.nan, 2], "bin_range": (0, 1)}, "finite and not negative"),
    ({"hist": [np.inf, 2], "bin_range": (0, 1)}, "finite and not negative"),
    ({"hist": [1, 2], "bin_range": (1, 0)}, "start < end"),
    ({"hist": [1, 2], "bin_range": (1, 1)}, "start < end"),
    ({"hist": [1, 2], "bin_range": (0, np.inf)}, "start < end"),
    ({"hist": [1, 2], "bin_range": (-1e308, 1e308)}, "wider than"),
])
def test_distribution_refuses_what_it_cannot_draw_saying_why(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Distribution(**kwargs)


# -- Audio ------------------------------------------------------------------------------------
def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1 if samples.ndim == 1 else samples.shape[1])
        w.setsampwidth(samples.dtype.itemsize)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buffer.getvalue()


def test_audio_from_numpy_is_wav():
    tone = (np.sin(np.linspace(0, 60, 8000)) * 20000).astype(np.int16)
    audio = stored(Audio(tone, rate=8000, caption="tone"))
    assert audio.json() == {"caption": "tone", "format": "wav"}
    rate, back = audio.to_numpy()
    assert rate == 8000 and np.array_equal(back, tone)
    assert audio.get().read()[:4] == b"RIFF"
    stereo = np.stack([tone, -tone], axis=1)
    assert np.array_equal(stored(Audio(stereo, rate=8000)).to_numpy()[1], stereo)
    floats = np.array([0.0, 0.5, -1.0, 2.0], np.float32)
    assert stored(Audio(floats)).to_numpy() == (22500, pytest.approx(
        np.array([0, 16384, -32767, 32767])))


def test_audio_from_bytes_files_and_paths(tmp_path):
    data = wav_bytes(np.arange(100, dtype=np.int16), 16000)
    assert stored(Audio(data, format="WAV")).data == data
    assert stored(Audio(io.BytesIO(data), format="wav")).data == data
    path = tmp_path / "clip.flac"
    path.write_bytes(b"fLaC fake content")
    audio = stored(Audio(str(path)))  # format from the extension
    assert (audio.format, audio.data) == ("flac", b"fLaC fake content")
    with pytest.raises(ValueError, match="format"):
        Audio(b"...")
    with pytest.raises(ValueError, match="format"):
        Audio(b"...", format="ogg")
    with pytest.raises(ValueError, match="no such file"):
        Audio(str(tmp_path / "none.wav"))
    with pytest.raises(ValueError, match="WAV"):
        stored(Audio(path)).to_numpy()


def test_audio_keeps_a_copy_of_samples():
    samples = np.zeros(10, np.int16)
    audio = Audio(samples, rate=100)
    samples[:] = 7
    assert not audio.to_numpy()[1].any()


# -- Figure -----------------------------------------------------------------------------------
def test_plotly_figure_round_trip():
    go = pytest.importorskip("plotly.graph_objects")
    fig = go.Figure(go.Scatter(x=np.arange(3), y=[3.0, 1.0, 2.0], name="<b>s</b>"))
    element = Figure(fig)
    fig.update_traces(y=[0, 0, 0])  # later changes are not part of the tracked figure
    back = stored(element)
    assert list(back.to_plotly_figure().data[0].y) == [3.0, 1.0, 2.0]
    assert back.to_dict()["data"][0]["name"] == "<b>s</b>"
    meta = back.json()
    assert meta["source"] == "plotly" and meta["format"] == "raw_json"
    assert meta["version"] != "unknown"


def test_figure_from_a_json_dict():
    spec = {"data": [{"type": "bar", "x": ["a", "b"], "y": np.array([1, 2])}],
            "layout": {"title": {"text": "t"}}}
    element = Figure(spec)
    spec["layout"]["title"]["text"] = "changed"
    back = stored(element)
    assert back.to_dict()["layout"]["title"]["text"] == "t"
    assert back.to_dict()["data"][0]["y"] == [1, 2]
    with pytest.raises(TypeError, match="plotly"):
        Figure([1, 2, 3])


# -- LogRecord --------------------------------------------------------------------------------
def test_log_record_fields():
    record = LogRecord("loss is NaN", logging.WARNING, timestamp=12.5,
                       logger_info=("train.py", 7), batch=3, where=object())
    back = stored(record)
    assert back.to_storage()[1] == b""
    assert (back.message, back.level, back.level_name, back.timestamp) == (
        "loss is NaN", logging.WARNING, "WARNING", 12.5)
    assert back.logger_info == ("train.py", 7)
    assert back.extra_args["batch"] == 3
    assert back.extra_args["where"].startswith("<object object")  # kept as its str()
    assert back.json()["log_level"] == "WARNING"


def test_element_classes_by_kind():
    assert element_class("text") is Text and element_class("log_record") is LogRecord
    with pytest.raises(ValueError, match="Unknown object kind"):
        element_class("video")
