"""Point chunks: exact round trips of every encoding, damaged chunks, chunks of older files."""

from __future__ import annotations

import sqlite3
import struct
import time
import zlib

import numpy as np
import pytest

from aim_core import Repo, Run
from aim_core.storage.chunks import MAX_POINTS, decode_chunk, decode_chunks, encode_chunk
from aim_core.storage.column_codec import Reader, decode_part

I64 = np.iinfo(np.int64)
N = 1 << 16
NAN_PAYLOADS = np.array([0x7FF8000000000000, 0xFFF8000000000000, 0x7FF0000000000001,
                         0x7FF4DEADBEEF0000, 0xFFFFFFFFFFFFFFFF], np.uint64).view(np.float64)

# Chunks written by aim-core before compact chunks (format AC1), raw and zlib-compressed:
# steps [0, 1, 5, 3, int64 min, int64 max], values [0.5, nan, inf, -inf, -0.0, 1e-300],
# epochs [nan, 0, 0, 1, 1, nan], timestamps 1.7e9 + [0, 0.25, ..., 1.25].
AC1_RAW = bytes.fromhex(
    "414331000600000000000000000000000100000000000000050000000000000003000000000000000000"
    "000000000080ffffffffffffff7f000000000000e03f000000000000f87f000000000000f07f00000000"
    "0000f0ff000000000000008059f3f8c21f6ea501000000000000f87f0000000000000000000000000000"
    "0000000000000000f03f000000000000f03f000000000000f87f00000040fc54d94100001040fc54d941"
    "00002040fc54d94100003040fc54d94100004040fc54d94100005040fc54d941")
AC1_ZLIB = bytes.fromhex(
    "41433101060000007801636080004628cd0aa599a134946af80f01f510fe037b08fd03caff00a3ffc3d4"
    "477efe71483e6f29d458983aa82c9cfa0035074683d539fc09b9e9c8c02000a515a0b401947680d20160"
    "1a004b8a28e7")
AC1_COLUMNS = (
    np.array([0, 1, 5, 3, I64.min, I64.max], np.int64),
    np.array([0.5, np.nan, np.inf, -np.inf, -0.0, 1e-300]),
    np.array([np.nan, 0, 0, 1, 1, np.nan]),
    1.7e9 + np.arange(6) * 0.25,
)


def columns(steps, values=None, epochs=None, times=None) -> tuple:
    """Four columns of the length of ``steps``; missing ones get typical contents."""
    steps = np.asarray(steps, np.int64)
    n = len(steps)
    rng = np.random.default_rng(n)
    values = rng.random(n) if values is None else values
    epochs = np.full(n, np.nan) if epochs is None else epochs
    times = 1.7e9 + np.cumsum(rng.integers(1, 9, n)) * 1e-6 if times is None else times
    return (steps, *(np.asarray(col, np.float64) for col in (values, epochs, times)))


def assert_same_bits(got, expected) -> None:
    """Every column has the expected dtype and the very same bit patterns."""
    assert [col.dtype for col in got] == [np.dtype("<i8")] + [np.dtype("<f8")] * 3
    for a, b in zip(got, expected, strict=True):
        assert a.view(np.uint64).tolist() == np.asarray(b).view(np.uint64).tolist()


def round_trip(cols) -> bytes:
    """Encode, decode, compare bits; return the chunk."""
    blob = encode_chunk(cols)
    assert_same_bits(decode_chunk(blob), cols)
    return blob


def reseal(blob: bytes) -> bytes:
    """Recompute a chunk's checksum, so a test reaches the checks behind it."""
    return blob[:3] + struct.pack("<I", zlib.crc32(blob[7:])) + blob[7:]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 63, 64, 65, 1000, N])
def test_sizes_round_trip(n):
    round_trip(columns(np.arange(n)))


def test_special_floats_round_trip_bit_for_bit():
    specials = np.concatenate([NAN_PAYLOADS, [np.inf, -np.inf, -0.0, 0.0, 5e-324, -5e-324,
                                              np.finfo(np.float64).max, 1.0, np.nan]])
    for data in (specials, np.repeat(specials, 500), np.tile(specials, 500)):
        for col in range(1, 4):  # in each float column: alone, in runs, repeating
            cols = list(columns(np.arange(len(data))))
            cols[col] = data
            round_trip(tuple(cols))


@pytest.mark.parametrize("steps", [
    [I64.min, I64.max],
    [I64.max, I64.min, I64.max, I64.min],
    [I64.min, I64.min + 1, I64.max - 1, I64.max],
    [I64.max] * 300,
    [0, 0, 0, 1, 1, 2, 2, 2, 2],
    [5, 3, 9, -4, 0, 2**40, -(2**40), 7],
    list(range(1000, 0, -1)),
    list(range(0, 3000, 3)),
    list(range(I64.max - 999, I64.max + 1)),
])
def test_step_patterns_round_trip(steps):
    round_trip(columns(steps))


def test_wide_and_wrapping_deltas_round_trip():
    rng = np.random.default_rng(7)
    steps = rng.integers(I64.min, I64.max, N, dtype=np.int64, endpoint=True)
    round_trip(columns(steps))
    for width in (2**7, 2**15, 2**31, 2**62):  # deltas that need each integer width
        deltas = rng.integers(-width, width, N)
        round_trip(columns(np.cumsum(deltas)))


def test_epoch_runs_with_nan_round_trip():
    epochs = np.concatenate([np.full(100, np.nan), np.zeros(200), np.full(3, np.nan),
                             np.ones(5000), [np.nan], np.full(10, 2.0), NAN_PAYLOADS])
    round_trip(columns(np.arange(len(epochs)), epochs=epochs))


def test_constant_random_and_float32_columns_round_trip():
    rng = np.random.default_rng(3)
    steps = np.arange(N)
    for values in (np.zeros(N), np.full(N, -0.0), np.full(N, 3.25), rng.random(N),
                   rng.standard_normal(N).astype(np.float32).astype(np.float64),
                   rng.integers(0, 4, N).astype(np.float64), np.sin(steps * 0.01)):
        round_trip(columns(steps, values=values, epochs=values, times=values))


def test_random_mixtures_round_trip():
    """Columns cut from runs, small deltas, extremes and noise, in many combinations."""
    rng = np.random.default_rng(11)
    pieces = [
        lambda k: np.full(k, rng.integers(-5, 5)),
        lambda k: np.cumsum(rng.integers(-3, 4, k)),
        lambda k: rng.integers(I64.min, I64.max, k, dtype=np.int64),
        lambda k: rng.choice([I64.min, I64.max, 0, -1], k),
        lambda k: NAN_PAYLOADS.view(np.int64)[rng.integers(0, 5, k)],
    ]
    for _ in range(60):
        n = int(rng.integers(0, 3000))
        cols = []
        for _col in range(4):
            cuts = np.sort(rng.integers(0, n + 1, 3))
            sizes = np.diff(np.concatenate([[0], cuts, [n]]))
            parts = [pieces[rng.integers(0, len(pieces))](int(k)) for k in sizes]
            cols.append(np.concatenate(parts).astype(np.int64))
        round_trip((cols[0], *(c.view(np.float64) for c in cols[1:])))


def test_typical_loss_is_compact():
    """A noisy decreasing loss, one point per step, steady timestamps: far under 12 B/point."""
    rng = np.random.default_rng(0)
    steps = np.arange(N)
    loss = 2.0 / (1.0 + steps * 1e-3) + 0.05 * rng.random(N)
    blob = round_trip(columns(steps, values=loss))
    assert len(blob) <= 9 * N
    float32_loss = loss.astype(np.float32).astype(np.float64)
    assert len(round_trip(columns(steps, values=float32_loss))) <= 5 * N
    assert len(round_trip(columns(steps, values=np.full(N, 0.1), epochs=steps // 1000,
                                  times=1.7e9 + steps * 0.25))) < 1000


def test_tracked_run_is_compact_on_disk(repo_path):
    rng = np.random.default_rng(1)
    n = 100_000
    with Run(repo=repo_path) as run:
        for step in range(n):
            run.track(2.0 / (1.0 + step * 1e-3) + 0.05 * rng.random(), name="loss", step=step)
    files = (repo_path / ".aim_core" / "runs").glob(f"{run.hash}.sqlite*")
    assert sum(f.stat().st_size for f in files) <= 12 * n
    metric = Repo(repo_path).get_run(run.hash).get_metric("loss")
    expected = 2.0 / (1.0 + np.arange(n) * 1e-3) + 0.05 * np.random.default_rng(1).random(n)
    assert (metric.steps == np.arange(n)).all() and (metric.values == expected).all()
    assert np.isnan(metric.epochs).all() and (np.diff(metric.timestamps) >= 0).all()
    assert abs(metric.timestamps[-1] - time.time()) < 60


def test_many_chunks_decode_into_one_set_of_columns():
    parts = [columns(np.arange(300, 1000)), columns([]), columns([5, 5, 1]),
             columns(np.arange(N))]
    blobs = [encode_chunk(p) for p in parts] + [AC1_RAW, AC1_ZLIB]
    got = decode_chunks(blobs)
    expected = [np.concatenate([p[i] for p in parts] + [AC1_COLUMNS[i]] * 2) for i in range(4)]
    assert_same_bits(got, expected)
    assert_same_bits(decode_chunks([]), columns([]))


@pytest.mark.parametrize("blob", [AC1_RAW, AC1_ZLIB])
def test_chunks_of_older_files_decode(blob):
    assert_same_bits(decode_chunk(blob), AC1_COLUMNS)


def legacy_chunk(cols, compress: bool) -> bytes:
    """A chunk as aim-core wrote it before compact chunks: AC1, raw arrays, maybe zlib."""
    body = b"".join(np.ascontiguousarray(c, "<i8" if i == 0 else "<f8").tobytes()
                    for i, c in enumerate(cols))
    return (struct.pack("<3sBI", b"AC1", int(compress), len(cols[0]))
            + (zlib.compress(body) if compress else body))


def test_run_files_with_older_chunks_still_read(repo_path):
    with Run(repo=repo_path) as run:
        for step in range(5000):
            run.track(step * 0.5, name="loss", step=step, epoch=step // 1000)
            run.track(-step, name="acc", step=step, context={"subset": "val"})
    path = repo_path / ".aim_core" / "runs" / f"{run.hash}.sqlite"
    expected = {m.name: (m.steps.copy(), m.values.copy(), m.epochs.copy(),
                         m.timestamps.copy()) for m in Repo(repo_path).get_run(run.hash).metrics()}
    with sqlite3.connect(path) as db:  # rewrite every chunk as the older format would have
        rows = db.execute("SELECT key, value FROM run WHERE key LIKE 'chunk/%'").fetchall()
        assert rows
        for i, (key, value) in enumerate(rows):
            legacy = legacy_chunk(decode_chunk(value), compress=bool(i % 2))
            db.execute("UPDATE run SET value = ? WHERE key = ?", (legacy, key))
    db.close()
    stored = Repo(repo_path).get_run(run.hash)
    for metric in stored.metrics():
        assert_same_bits((metric.steps, metric.values, metric.epochs, metric.timestamps),
                         expected[metric.name])
    with Run(run.hash, repo=repo_path) as resumed:  # new chunks next to old ones
        resumed.track(1.5, name="loss", step=5000)
    loss = Repo(repo_path).get_run(run.hash).get_metric("loss")
    assert loss.count == 5001 and loss.values[-1] == 1.5 and loss.values[4999] == 4999 * 0.5


def test_encode_refuses_bad_columns():
    with pytest.raises(ValueError, match="same length"):
        encode_chunk((np.arange(3), np.zeros(3), np.zeros(2), np.zeros(3)))
    big = np.zeros(MAX_POINTS + 1)
    with pytest.raises(ValueError, match="at most"):
        encode_chunk((big.astype(np.int64), big, big, big))


def sample_chunks() -> list[bytes]:
    """Chunks that between them use every encoding and part codec."""
    rng = np.random.default_rng(5)
    steps = np.arange(4000)
    return [
        encode_chunk(columns([7])),
        encode_chunk(columns(steps, values=np.sin(steps * 0.1), epochs=steps // 700)),
        encode_chunk(columns(rng.integers(0, 9, 4000).cumsum(),
                             values=rng.random(4000).astype(np.float32).astype(float))),
        encode_chunk(columns(rng.integers(I64.min, I64.max, 300, dtype=np.int64))),
        AC1_RAW, AC1_ZLIB,
    ]


@pytest.mark.parametrize("index", range(6))
def test_truncated_chunks_raise(index):
    blob = sample_chunks()[index]
    cuts = range(len(blob)) if len(blob) < 400 else np.linspace(0, len(blob) - 1, 400, dtype=int)
    for cut in cuts:
        with pytest.raises(ValueError):
            decode_chunk(blob[:cut])
        if blob[:3] == b"AC2":  # even with a checksum that matches the cut
            with pytest.raises(ValueError):
                decode_chunk(reseal(blob[:cut]) if cut >= 7 else blob[:cut])


@pytest.mark.parametrize("index", range(4))
def test_flipped_bits_raise(index):
    blob = bytearray(sample_chunks()[index])
    for pos in np.linspace(0, len(blob) - 1, 200, dtype=int):
        damaged = bytearray(blob)
        damaged[pos] ^= 1 << (pos % 8)
        with pytest.raises(ValueError):
            decode_chunk(bytes(damaged))


@pytest.mark.parametrize("index", range(4))
def test_damaged_fields_behind_a_good_checksum_raise(index):
    """Bytes changed and resealed: every field is checked on its own, never trusted."""
    blob = sample_chunks()[index]
    rng = np.random.default_rng(index)
    raised = 0
    for pos in range(7, len(blob)) if len(blob) < 3000 else rng.integers(7, len(blob), 3000):
        for value in (0, 0xFF, blob[pos] ^ 0x10):
            damaged = reseal(blob[:pos] + bytes([value]) + blob[pos + 1:])
            try:
                got = decode_chunk(damaged)
            except ValueError:
                raised += 1
                continue
            # A changed payload byte may decode to other points, but always to whole columns.
            assert len({len(col) for col in got}) == 1
    assert raised > 0


def test_damaged_headers_and_lengths_raise():
    blob = encode_chunk(columns(np.arange(100)))
    count = struct.unpack_from("<I", blob, 7)[0]
    for bad in (b"", b"AC", b"XYZ" + blob[3:], b"AC9" + blob[3:], blob + b"\0",
                reseal(blob + b"\0"), reseal(blob[:7] + struct.pack("<I", count + 1) + blob[11:]),
                reseal(blob[:7] + struct.pack("<I", MAX_POINTS + 1) + blob[11:]),
                b"AC1\0" + struct.pack("<I", 7) + AC1_RAW[8:],
                AC1_RAW + b"\0", AC1_ZLIB[:-1], AC1_ZLIB[:8] + b"not zlib at all"):
        with pytest.raises(ValueError):
            decode_chunk(bad)
    for not_binary in (None, "AC2", 3, {"chunk": 1}):
        with pytest.raises(ValueError, match="missing or not binary"):
            decode_chunk(not_binary)


def test_compressed_part_cannot_inflate_past_its_length():
    bomb = zlib.compress(bytes(64 << 20), 1)
    part = struct.pack("<BI", 1, len(bomb)) + bomb
    with pytest.raises(ValueError, match="wrong length"):
        decode_part(Reader(memoryview(part)), 1 << 16)
    short = zlib.compress(bytes(100), 1)
    with pytest.raises(ValueError, match="wrong length"):
        decode_part(Reader(memoryview(struct.pack("<BI", 1, len(short)) + short)), 101)
    assert bytes(decode_part(Reader(memoryview(struct.pack("<BI", 1, len(short)) + short)),
                             100)) == bytes(100)
