"""``Audio``: a WAV, MP3 or FLAC clip; numpy samples are written as WAV (stdlib ``wave``)."""

from __future__ import annotations

import io
import os
import wave
from typing import Any

import numpy as np

from .base import Encoded, ObjectElement

FORMATS = ("mp3", "wav", "flac")
DEFAULT_RATE = 22500  # Aim's default for numpy samples


class Audio(ObjectElement):
    """Aim's ``Audio(data, format="", caption="", rate=None)``.

    ``data`` is a file path, bytes, a binary file object, or a numpy array of samples
    (``(n,)`` or ``(n, channels)``; int16/int32/uint8 as they are, floats in [-1, 1] as
    16-bit) written as WAV at ``rate`` Hz. ``format`` is one of mp3, wav, flac; a path's
    extension gives it when omitted.
    """

    kind = "audio"
    __slots__ = ("_caption",)

    def __init__(self, data: Any, format: str = "", caption: str = "",
                 rate: int | None = None) -> None:
        fmt = (format or "").lower()
        if isinstance(data, np.ndarray):
            fmt = "wav"
            source: Any = (_checked_samples(data), int(rate or DEFAULT_RATE))
        elif isinstance(data, (str, os.PathLike)):
            if not os.path.isfile(data):
                raise ValueError(f"Invalid audio file path {os.fspath(data)!r}: no such file.")
            fmt = fmt or os.path.splitext(os.fspath(data))[1].lstrip(".").lower()
            with open(data, "rb") as f:
                source = f.read()
        elif isinstance(data, (bytes, bytearray, memoryview)):
            source = bytes(data)
        elif hasattr(data, "read"):
            source = data.read()
            if not isinstance(source, bytes):
                raise TypeError("Audio file objects must be opened in binary mode.")
        else:
            raise TypeError(f"Cannot make Audio from {type(data).__name__}: give a path, "
                            "bytes, a binary file object or a numpy array.")
        if fmt not in FORMATS:
            raise ValueError(f"Audio format must be one of {FORMATS}, got {fmt!r}.")
        self._init_source((fmt, source))
        self._caption = str(caption)

    def _restore(self) -> None:
        self._caption = self._meta.get("caption", "")

    def _encode(self, source: Any) -> Encoded:
        fmt, source = source
        meta: dict[str, Any] = {"caption": self._caption, "format": fmt}
        if isinstance(source, tuple):
            samples, rate = source
            meta["rate"] = rate
            return meta, _wav_bytes(samples, rate)
        return meta, source

    @property
    def caption(self) -> str:
        """The caption given when tracking."""
        return self._caption

    @property
    def format(self) -> str:
        """``"wav"``, ``"mp3"`` or ``"flac"``."""
        return self.meta["format"]

    @property
    def data(self) -> bytes:
        """The audio file's bytes."""
        return self._bytes()

    def get(self) -> io.BytesIO:
        """The audio file's bytes in a fresh buffer, as Aim's ``Audio.get()``."""
        return io.BytesIO(self._bytes())

    def to_numpy(self) -> tuple[int, np.ndarray]:
        """``(rate, samples)`` of a WAV clip; samples are ``(n,)`` or ``(n, channels)``."""
        if self.format != "wav":
            raise ValueError(f"to_numpy() reads WAV clips only; this clip is {self.format}.")
        with wave.open(io.BytesIO(self._bytes()), "rb") as wav:
            rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
            frames = wav.readframes(wav.getnframes())
        if width == 3:
            raw = np.frombuffer(frames, np.uint8).reshape(-1, 3)
            padded = np.zeros((len(raw), 4), np.uint8)
            padded[:, 1:] = raw
            samples = padded.view("<i4").reshape(-1)
        else:
            samples = np.frombuffer(frames, {1: "u1", 2: "<i2", 4: "<i4"}[width])
        return rate, samples.reshape(-1, channels) if channels > 1 else samples

    def json(self) -> dict[str, Any]:
        """Caption and format, as Aim's ``Audio.json()``."""
        return {"caption": self.caption, "format": self.format}


def _checked_samples(samples: np.ndarray) -> np.ndarray:
    if samples.ndim not in (1, 2):
        raise ValueError(f"Audio samples must be (n,) or (n, channels), got {samples.shape}.")
    if samples.dtype.kind == "f":
        return samples.copy()
    if samples.dtype not in (np.uint8, np.int16, np.int32):
        raise ValueError("Audio samples must be uint8, int16, int32 or floats in [-1, 1], got "
                         f"{samples.dtype}.")
    return samples.copy()


def _wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """PCM WAV of ``samples``; floats become 16-bit."""
    if samples.dtype.kind == "f":
        samples = np.rint(np.clip(np.nan_to_num(samples), -1.0, 1.0) * 32767).astype("<i2")
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(samples.dtype.itemsize)
        wav.setframerate(rate)
        wav.writeframes(np.ascontiguousarray(samples, samples.dtype.newbyteorder("<")).tobytes())
    return buffer.getvalue()
