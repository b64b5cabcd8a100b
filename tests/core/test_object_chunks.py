"""Object chunks: metadata without payloads, payload blocks, blob files, damaged input."""

from __future__ import annotations

import math
import sqlite3

import numpy as np
import pytest

from aim_core import Distribution, Image, Text
from aim_core.objects import EncodedPoint
from aim_core.storage.blobs import BlobStore
from aim_core.storage.object_chunks import (
    BLOB_PREFIX,
    PayloadBlocks,
    PayloadReader,
    StoredPoint,
    blob_shas,
    build_stored_points,
    concat_object_columns,
    decode_object_chunk,
    decode_object_steps,
    encode_object_chunk,
    latest_per_step,
    object_summary,
    referenced_payloads,
)

NAN = math.nan


def build(points, blocks=None, errors=None):
    blocks = blocks or PayloadBlocks(lambda i: f"payload/0/0.{i}")
    errors = [] if errors is None else errors
    columns = build_stored_points(points, blocks,
                                  lambda point, exc: errors.append((point[0], exc)))
    return columns, blocks.finish()


def test_round_trip_with_lists_epochs_and_empty_payloads():
    points = [(0, Text("a"), NAN, 1.0), (1, [Text("b"), Text("")], 2.0, 2.0),
              (5, Distribution(hist=[1, 2], bin_range=(0, 1)), NAN, 3.0)]
    columns, blocks = build(points)
    assert list(blocks) == ["payload/0/0.0"]
    for compress in (True, False):
        steps, points, epochs, times = decode_object_chunk(
            encode_object_chunk(columns, compress=compress))
        assert steps.tolist() == [0, 1, 5]
        assert epochs[1] == 2.0 and math.isnan(epochs[0])
        assert times.tolist() == [1.0, 2.0, 3.0]
        assert [p.is_list for p in points] == [False, True, False]
        assert points[1].elements[1].where == ""  # nothing to store for ""
        reader = PayloadReader(blocks.get)
        texts = [reader.read(*e[1:]) for p in points[:2] for e in p.elements]
        assert texts == [b"a", b"b", b""]
        assert points[2].elements[0].meta == {"bin_count": 2, "range": [0.0, 1.0]}
    steps, epochs, times = decode_object_steps(encode_object_chunk(columns))
    assert steps.tolist() == [0, 1, 5] and times.tolist() == [1.0, 2.0, 3.0]


def test_metadata_is_read_without_touching_payloads():
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    columns, blocks = build([(i, Image(image, caption=f"c{i}"), NAN, 0.0) for i in range(50)])
    chunk = encode_object_chunk(columns)
    assert len(chunk) < 0.02 * sum(map(len, blocks.values()))  # the pixels live in blocks
    reads = []
    reader = PayloadReader(lambda key: reads.append(key) or blocks[key])
    points = decode_object_chunk(chunk)[1]
    assert [p.elements[0].meta["caption"] for p in points][:3] == ["c0", "c1", "c2"]
    assert reads == []
    element = points[7].elements[0]
    data = reader.read(element.where, element.offset, element.length)
    assert data == Image(image, caption="c7").to_storage()[1]
    assert len(reads) == 1


def test_payloads_fill_blocks_up_to_their_size():
    blocks = PayloadBlocks(lambda i: f"p.{i}", block_bytes=100)
    places = [blocks.add(bytes([i]) * 40) for i in range(5)]
    assert [p[0] for p in places] == ["p.0", "p.0", "p.1", "p.1", "p.2"]
    assert [p[1] for p in places] == [0, 40, 0, 40, 0]
    assert {k: len(v) for k, v in blocks.finish().items()} == {"p.0": 80, "p.1": 80, "p.2": 40}


def test_large_payloads_go_to_blob_files(tmp_path):
    store = BlobStore(tmp_path / "blobs")
    blocks = PayloadBlocks(lambda i: f"p.{i}", lambda data: store.put("run1", data),
                           blob_threshold=1000)
    big, small = Text("x" * 5000), Text("y" * 10)
    columns, payload_blocks = build([(0, big, NAN, 0.0), (1, small, NAN, 0.0),
                                     (2, Text("x" * 5000), NAN, 0.0)], blocks)
    back = decode_object_chunk(encode_object_chunk(columns))
    wheres = list(referenced_payloads(back))
    assert wheres[0].startswith(BLOB_PREFIX) and wheres[0] == wheres[2]  # one file, shared
    assert wheres[1] == "p.0" and len(payload_blocks["p.0"]) == 10
    shas = blob_shas(wheres)
    assert store.run_blobs("run1") == shas and len(shas) == 1
    reader = PayloadReader(payload_blocks.get, lambda sha, n: store.read("run1", sha, n))
    element = back[1][2].elements[0]
    assert reader.read(*element[1:]) == b"x" * 5000


def test_a_failing_element_is_dropped_and_the_others_kept():
    class Broken(Text):
        def _encode(self, source):
            raise RuntimeError("cannot encode")

    errors = []
    columns, _ = build([(0, Text("ok"), NAN, 0.0), (1, Broken("bad"), NAN, 0.0),
                        (2, [Text("fine"), Broken("bad")], NAN, 0.0), (3, Text("ok"), NAN, 0.0)],
                       errors=errors)
    assert columns[0].tolist() == [0, 3]
    assert [step for step, _ in errors] == [1, 2]
    assert "cannot encode" in str(errors[0][1])


def test_metadata_that_json_cannot_hold_is_refused_per_point():
    errors = []
    columns, _ = build([(0, EncodedPoint("text", False, [({"x": NAN}, b"a")]), NAN, 0.0),
                        (1, EncodedPoint("text", False, [({"x": 1}, b"b")]), NAN, 0.0)],
                       errors=errors)
    assert columns[0].tolist() == [1] and len(errors) == 1


def test_latest_per_step_and_concat():
    a, _ = build([(3, Text("a3"), NAN, 0.0), (1, Text("a1"), NAN, 0.0)])
    b, _ = build([(3, Text("b3"), NAN, 0.0), (2, Text("b2"), NAN, 0.0),
                  (2, Text("c2"), NAN, 0.0)])
    merged = concat_object_columns([decode_object_chunk(encode_object_chunk(c)) for c in (a, b)])
    assert merged[0].tolist() == [3, 1, 3, 2, 2]
    latest = latest_per_step(merged)
    assert latest[0].tolist() == [1, 2, 3]
    assert object_summary(merged) == {"count": 3, "first_step": 1, "last_step": 3}
    offsets = [p.elements[0].offset for p in latest[1]]
    assert offsets == [2, 4, 0]  # a1 (after "a3"), c2 (after "b3b2"), b3


@pytest.mark.parametrize("damage", [
    lambda c: c[:5],
    lambda c: b"XXX" + c[3:],
    lambda c: c[:-3],
    lambda c: c[:8] + b"\x00" * 4 + c[12:],
    lambda c: c + b"trailing",
])
def test_damaged_chunks_raise_value_error(damage):
    columns, _ = build([(i, Text(str(i)), NAN, 0.0) for i in range(5)])
    chunk = encode_object_chunk(columns)
    with pytest.raises(ValueError):
        decode_object_chunk(damage(chunk))


def test_reader_reports_missing_and_short_blocks():
    reader = PayloadReader({"p.0": b"abc"}.get)
    with pytest.raises(ValueError, match="missing"):
        reader.read("p.1", 0, 1)
    with pytest.raises(ValueError, match="shorter"):
        reader.read("p.0", 2, 5)


def test_chunk_survives_a_real_sqlite_file(tmp_path):
    columns, blocks = build([(i, Text(f"t{i}"), NAN, float(i)) for i in range(100)])
    db = sqlite3.connect(tmp_path / "f.sqlite")
    db.execute("CREATE TABLE run (key TEXT PRIMARY KEY, value BLOB)")
    db.execute("INSERT INTO run VALUES (?, ?)", ("chunk/0/0", encode_object_chunk(columns)))
    db.executemany("INSERT INTO run VALUES (?, ?)", list(blocks.items()))
    db.commit()

    def get(key):
        row = db.execute("SELECT value FROM run WHERE key = ?", (key,)).fetchone()
        return row and row[0]

    points = decode_object_chunk(get("chunk/0/0"))[1]
    reader = PayloadReader(get)
    assert [reader.read(*p.elements[0][1:]).decode() for p in points[::33]] == \
        ["t0", "t33", "t66", "t99"]
    assert isinstance(points[0], StoredPoint)


def test_a_storage_error_is_not_an_encoding_error(tmp_path):
    def full_disk(data):
        raise OSError(28, "No space left on device")

    blocks = PayloadBlocks(lambda i: f"p.{i}", full_disk, blob_threshold=10)
    errors = []
    with pytest.raises(OSError, match="No space"):
        build([(0, Text("x" * 100), NAN, 0.0)], blocks, errors)
    assert errors == []  # nothing was dropped: the flush fails and the point stays buffered
