"""Reading object sequences: Aim's accessors over stored and still buffered points."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aim_core import Distribution, Image, Text
from aim_core.objects import (
    EncodedPoint,
    Images,
    LogRecords,
    Texts,
    sequence_class,
)
from aim_core.storage.object_chunks import (
    PayloadBlocks,
    PayloadReader,
    build_stored_points,
    concat_object_columns,
    decode_object_chunk,
    encode_object_chunk,
    object_columns,
)

NAN = math.nan


def stored_sequence(cls, points, live=(), summary=None):
    """A sequence read from an encoded chunk (plus live points), counting payload reads."""
    blocks = PayloadBlocks(lambda i: f"p.{i}")
    columns = build_stored_points(points, blocks, lambda p, e: None)
    store = blocks.finish()
    reads = []
    reader = PayloadReader(lambda key: reads.append(key) or store[key])
    parts = [decode_object_chunk(encode_object_chunk(columns))]
    if live:
        live_columns = build_live(live)
        parts.append(live_columns)
    seq = cls(None, "samples", {"subset": "val"}, summary,
              lambda: (concat_object_columns(parts), reader))
    return seq, reads


def build_live(points):
    return object_columns([p[0] for p in points], [p[1] for p in points],
                          [p[2] for p in points], [p[3] for p in points])


def test_items_yield_step_value_epoch_timestamp():
    seq, reads = stored_sequence(Texts, [(0, Text("a"), NAN, 10.0), (2, Text("c"), 1.0, 12.0),
                                         (1, [Text("b1"), Text("b2")], NAN, 11.0)])
    items = list(seq.data.items())
    assert [step for step, _ in items] == [0, 1, 2]
    step, (value, epoch, timestamp) = items[1]
    assert [t.data for t in value] == ["b1", "b2"] and epoch is None and timestamp == 11.0
    assert items[2][1][1] == 1.0 and items[0][1][0].data == "a"
    assert seq.steps.dtype == np.int64 and seq.steps.tolist() == [0, 1, 2]
    assert math.isnan(seq.epochs[0]) and seq.timestamps.tolist() == [10.0, 11.0, 12.0]
    assert (seq.count, seq.first_step, seq.last_step, len(seq)) == (3, 0, 2, 3)
    assert seq.record_length() == 2
    assert seq.context == {"subset": "val"} and seq.name == "samples"


def test_retracked_step_shows_the_last_value_once():
    seq, _ = stored_sequence(Texts, [(0, Text("old"), NAN, 1.0), (1, Text("x"), NAN, 2.0)],
                             live=[(0, Text("new"), NAN, 3.0)])
    assert [(s, v[0].data) for s, v in seq.data.items()] == [(0, "new"), (1, "x")]
    assert seq.count == 2


def test_elements_load_bytes_lazily():
    rgb = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    seq, reads = stored_sequence(
        Images, [(i, Image(rgb, caption=f"c{i}"), NAN, 0.0) for i in range(30)])
    captions = [value.caption for _, (value, _, _) in seq.data.items()]
    sizes = {value.size for value in seq.data.values()}
    assert captions[:2] == ["c0", "c1"] and sizes == {(8, 8)}
    assert reads == []
    assert np.array_equal(np.asarray(seq.values[5].to_pil_image()), rgb)
    assert reads == ["p.0"]


def test_values_numpy_sample_and_range():
    seq, _ = stored_sequence(Texts, [(s, Text(str(s)), float(s), 0.0) for s in range(0, 20, 2)])
    steps, values = seq.values.sparse_list()
    assert steps == list(range(0, 20, 2)) and [v.data for v in values][:2] == ["0", "2"]
    assert seq.values.first()[0] == 0 and seq.values.last()[1].data == "18"
    assert seq.values.last_idx() == 18 and len(seq.values) == 10
    steps, (objects, epochs, times) = seq.data.numpy()
    assert objects.dtype == object and epochs.tolist() == list(map(float, range(0, 20, 2)))
    assert seq.data.range(4, 9).indices_list() == [4, 6, 8]
    sample = seq.data.sample(4)
    assert len(sample) == 4 and sample.indices_list()[0] == 0 and sample.indices_list()[-1] == 18
    assert seq.data.items_list()[0] == steps.tolist()
    with pytest.raises(IndexError):
        seq.values[10]


def test_live_elements_and_encoded_points_read_like_stored_ones():
    live = [(0, Distribution(hist=[1, 2], bin_range=(0, 1)), NAN, 0.0),
            (1, EncodedPoint("distribution", True, [
                Distribution(hist=[5], bin_range=(0, 1)).to_storage()]), NAN, 0.0)]
    seq = sequence_class("distribution")(None, "w", {}, None,
                                         lambda: (build_live(live), None))
    values = seq.values.values_list()
    assert values[0].weights.tolist() == [1.0, 2.0]
    assert [d.weights.tolist() for d in values[1]] == [[5.0]]


def test_summary_answers_without_loading():
    calls = []

    def loader():
        calls.append(1)
        raise AssertionError("the summary should have been enough")

    seq = Images(None, "samples", {}, {"count": 7, "first_step": 3, "last_step": 9}, loader)
    assert (seq.count, seq.first_step, seq.last_step, bool(seq)) == (7, 3, 9, True)
    assert calls == []


def test_sequence_names_as_in_aim():
    assert Images.sequence_name() == "images" and Texts.sequence_name() == "texts"
    assert LogRecords.sequence_name() == "log_records"
    assert sequence_class("log_record") is LogRecords
    with pytest.raises(ValueError):
        sequence_class("metric")
