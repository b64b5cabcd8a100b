"""The wire format and the spool file, without a server."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

from aim_core.remote.protocol import (
    BatchError,
    Op,
    Sequence,
    columns_of,
    decode_batch,
    decode_series,
    encode_batch,
    encode_series,
)
from aim_core.remote.spool import Spool, SpoolFull, orphans
from aim_core.remote.urls import base_url, is_remote_url, server_key

LIMIT = 1 << 30


def test_batch_round_trips_every_value_exactly():
    big = np.iinfo(np.int64)
    points = [(big.min, -0.0, math.nan, 1.5), (0, math.inf, 1.0, 2.5), (0, -math.inf, 2.0, 3.0),
              (big.max, math.nan, -1.0, 1e9), (5, 1e-300, 3.0, 0.0)]
    ops = [Op("create", {"props": {"creation_time": 1.0}, "heartbeat": 2.0, "client": {}}),
           Op("points", sequences=[Sequence("loss", {"a": True, "b": 1, "c": 1.0, "d": None},
                                            "metric", columns_of(points)),
                                   Sequence("empty", {}, "metric", columns_of([]))]),
           Op("meta", {"params": {"lr": math.nan, "x": [1, {"y": "z"}]},
                       "props": {"name": "n", "tags": ["t"]}}),
           Op("close", {"status": "failed"})]
    batch = decode_batch(encode_batch("run1", "sess", 7, ops, 2.0), LIMIT)
    assert (batch.run, batch.session, batch.seq, batch.heartbeat) == ("run1", "sess", 7, 2.0)
    assert [op.kind for op in batch.ops] == ["create", "points", "meta", "close"]
    seq = batch.ops[1].sequences[0]
    assert seq.context == {"a": True, "b": 1, "c": 1.0, "d": None}
    assert type(seq.context["a"]) is bool and type(seq.context["c"]) is float
    steps, values, epochs, times = seq.columns
    assert steps.tolist() == [p[0] for p in points]
    assert np.array_equal(values, [p[1] for p in points], equal_nan=True)
    assert math.copysign(1, values[0]) == -1
    assert np.array_equal(epochs, [p[2] for p in points], equal_nan=True)
    assert times.tolist() == [p[3] for p in points]
    assert len(batch.ops[1].sequences[1].columns[0]) == 0
    assert batch.points == 5
    assert math.isnan(batch.ops[2].args["params"]["lr"])


def test_series_round_trip():
    columns = columns_of([(3, 1.0, math.nan, 5.0), (4, 2.0, 1.0, 6.0)])
    back = decode_series(encode_series(columns))
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(columns, back, strict=True))


def test_truncated_or_lying_bodies_are_refused():
    body = encode_batch("r", "s", 1, [Op("points", sequences=[
        Sequence("x", {}, "metric", columns_of([(1, 1.0, 0.0, 0.0)] * 10))])], 1.0)
    with pytest.raises(BatchError, match="truncated"):
        decode_batch(body[:-5], LIMIT)
    raw = zlib.decompress(body)
    with pytest.raises(BatchError, match="body ends"):
        decode_batch(zlib.compress(raw[:-8]), LIMIT)
    with pytest.raises(BatchError, match="limit"):
        decode_batch(body, 100)
    with pytest.raises(BatchError, match="close must be the last"):
        decode_batch(encode_batch("r", "s", 1, [Op("close", {"status": "finished"}),
                                                Op("resume", {"heartbeat": 1.0})], 1.0), LIMIT)
    with pytest.raises(BatchError, match="kind"):
        decode_batch(encode_batch("r", "s", 1, [Op("points", sequences=[
            Sequence("x", {}, "video", columns_of([]))])], 1.0), LIMIT)
    with pytest.raises(BatchError, match="objects"):  # an object kind needs its elements
        decode_batch(encode_batch("r", "s", 1, [Op("points", sequences=[
            Sequence("x", {}, "image", columns_of([]))])], 1.0), LIMIT)


def test_urls():
    assert base_url("aim://host") == "http://host:53800"
    assert base_url("aim://host:1234/") == "http://host:1234"
    assert base_url("https://h.example/aim") == "https://h.example/aim"
    assert base_url("AIM://[::1]:5") == "http://[::1]:5"
    assert is_remote_url("aim://x") and is_remote_url("HTTP://x") and not is_remote_url("./aim")
    assert not is_remote_url(None) and server_key("aim://h:1") == "h_1"
    with pytest.raises(ValueError, match="not a server URL"):
        base_url("ftp://x")


def test_spool_keeps_order_across_reopen_and_ignores_a_torn_record(tmp_path):
    path = tmp_path / "s" / "run-abc.spool"
    spool = Spool(path)
    for i in range(5):
        spool.append(f"body{i}".encode(), points=i)
    assert spool.first() == (0, b"body0") and spool.points == 10
    spool.pop()
    spool.pop()
    spool.close()
    with open(path, "ab") as f:
        f.write(b"\x40\x00\x00\x00garbage")  # a record cut short by a crash
    again = Spool(path)
    assert [body for _, _, body in again.records()] == [b"body2", b"body3", b"body4"]
    assert again.points == 9
    again.append(b"body5", 1)
    assert [body for _, _, body in again.records()][-1] == b"body5"
    while not again.empty:
        again.pop()
    again.remove()
    assert not path.exists()


def test_acknowledged_records_do_not_count_against_the_spool_bound(tmp_path):
    path = tmp_path / "run-abc.spool"
    spool = Spool(path, max_bytes=1000)
    for i in range(10):  # 10 records of 92 bytes after a 16-byte header: nearly full
        spool.append(bytes([i]) * 80, points=1)
    for _ in range(8):  # the server catches up ...
        spool.pop()
    for i in range(10, 13):  # ... while training goes on
        spool.append(bytes([i]) * 80, points=1)
    expected = [bytes([i]) * 80 for i in (8, 9, 10, 11, 12)]
    assert [body for _, _, body in spool.records()] == expected
    assert spool.points == 5 and path.stat().st_size <= 1000
    spool.close()
    again = Spool(path, max_bytes=1000)  # as a later process finds it
    assert [body for _, _, body in again.records()] == expected and again.points == 5
    with pytest.raises(SpoolFull):  # unacknowledged records still fill it
        for i in range(20):
            again.append(bytes([i]) * 80, points=1)
    again.close()


def test_spool_is_bounded_and_locked(tmp_path):
    path = tmp_path / "run-abc.spool"
    spool = Spool(path, max_bytes=100)
    spool.append(b"x" * 40, 1)
    with pytest.raises(SpoolFull):
        spool.append(b"x" * 60, 1)
    assert list(orphans(tmp_path)) == []  # held by a live owner: not an orphan
    spool.close()
    found = list(orphans(tmp_path))
    assert len(found) == 1 and found[0].first() == (1, b"x" * 40)


def test_object_sequences_carry_metadata_and_payloads():
    objects = [(False, [({"format": "png", "caption": "a"}, b"\x89PNG-one")]),
               (True, [({"format": "png"}, b""), ({"format": "png", "w": 2}, b"\x00" * 300)])]
    columns = columns_of([(0, math.nan, 1.0, 5.0), (3, math.nan, math.nan, 6.0)])
    ops = [Op("points", sequences=[
        Sequence("samples", {"subset": "val"}, "image", columns, objects),
        Sequence("loss", {}, "metric", columns_of([(0, 0.5, 0.0, 5.0)]))])]
    batch = decode_batch(encode_batch("r", "s", 1, ops, 1.0), LIMIT)
    images, loss = batch.ops[0].sequences
    assert images.kind == "image" and images.objects == objects
    assert images.columns[0].tolist() == [0, 3] and loss.objects is None
    assert loss.columns[1].tolist() == [0.5]


def test_object_tables_that_do_not_match_their_points_are_refused():
    raw_ops = [Op("points", sequences=[Sequence("t", {}, "text", columns_of(
        [(0, math.nan, 0.0, 0.0)]), [(False, [({}, b"abc")])])])]
    body = zlib.decompress(encode_batch("r", "s", 1, raw_ops, 1.0))
    bad_bodies = {
        "bytes missing": body[:-2],
        "count lies": body.replace(b'"objects":[[false,[[{},3]]]]',
                                   b'"objects":[[false,[[{},9]]]]'),
        "wrong points": body.replace(b'"objects":[[false,[[{},3]]]]', b'"objects":[]'),
        "bad element": body.replace(b'"objects":[[false,[[{},3]]]]',
                                    b'"objects":[[false,[["x",3]]]]'),
    }
    for what, raw in bad_bodies.items():
        assert raw != body, what
        with pytest.raises(BatchError):
            decode_batch(zlib.compress(raw), LIMIT)
