"""A small PNG writer for uint8 arrays: the flusher's fast path for array images.

Every row gets PNG's Sub filter (each byte minus the same byte of the pixel to its left) in
one numpy operation, and the rows are deflated at level 1: with ISA-L (``isal``, in the
``[media]`` extra) where it is installed, else with zlib's run-length strategy (the same
size, half the speed). Choosing a filter per image (Sub, Up or Average) saves 2-3% on
pictures with noise, but its small numpy calls hand the GIL back and forth between the
flusher's encoder threads and cost 15-20% of a flush of images. On 64x64 images with noise
this is 7x (ISA-L) or 3.5x (zlib) faster than Pillow's default PNG and 4-6% larger.
Decoding, JPEG and every other source still go through Pillow.
"""

from __future__ import annotations

import functools
import struct
import zlib
from collections.abc import Callable

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> grey, grey+alpha, RGB, RGBA
MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
SUB = 1  # the PNG filter of every row: each byte minus the one a pixel to its left


def _zlib_deflate(data: np.ndarray) -> bytes:
    deflate = zlib.compressobj(1, zlib.DEFLATED, 15, 8, zlib.Z_RLE)
    return deflate.compress(data) + deflate.flush()


@functools.cache
def _deflater() -> Callable[[np.ndarray], bytes]:
    """A zlib-stream encoder at level 1: ISA-L's where installed, else zlib's."""
    try:
        from isal import isal_zlib
    except ImportError:
        return _zlib_deflate
    return functools.partial(isal_zlib.compress, level=1)


def _chunk(tag: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(tag))
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of a uint8 HxW or HxWxC (C in 1-4) array."""
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    rows = np.ascontiguousarray(pixels, np.uint8).reshape(height, width * channels)
    out = np.empty((height, width * channels + 1), np.uint8)
    out[:, 0] = SUB
    out[:, 1 : channels + 1] = rows[:, :channels]  # the first pixel of a row stays as it is
    np.subtract(rows[:, channels:], rows[:, :-channels], out=out[:, channels + 1 :])
    data = _deflater()(out)
    header = struct.pack(">IIBBBBB", width, height, 8, COLOR_TYPES[channels], 0, 0, 0)
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")
