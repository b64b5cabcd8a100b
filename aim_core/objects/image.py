"""``Image``: a picture from a path, PIL image, numpy array, torch tensor or matplotlib figure.

The constructor copies the input (an array stays an array); PNG/JPEG encoding with Pillow
happens in ``to_storage()`` on the flusher thread. Pillow is the ``[media]`` extra.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np

from .base import Encoded, ObjectElement
from .png import MODES, encode_png

DEFAULT_FORMAT = "png"
_Z_RLE = 3  # zlib's Z_RLE strategy
_pil_state: dict[str, bool] = {}


def require_pil() -> None:
    """Raise ImportError saying what to install when Pillow is missing (checked once)."""
    if "ok" not in _pil_state:
        import importlib.util

        try:
            _pil_state["ok"] = importlib.util.find_spec("PIL") is not None
        except (ImportError, ValueError):
            _pil_state["ok"] = False
    if not _pil_state["ok"]:
        raise ImportError("aim_core.Image needs Pillow: pip install 'aim-core[media]'")


def normalize_format(fmt: str | None) -> str | None:
    """Lower-case an image format name; ``jpg`` is ``jpeg``."""
    if not fmt:
        return None
    fmt = str(fmt).lower()
    return "jpeg" if fmt == "jpg" else fmt


class Image(ObjectElement):
    """An image, as Aim's ``Image(image, caption="", format=None, quality=90, optimize=False)``.

    ``image`` is a file path, a PIL image, a numpy array (HxW or HxWxC; uint8, bool, or float
    in [0, 1]), a torch tensor (HxW or CxHxW; float in [0, 1] or uint8) or a matplotlib
    figure. ``format`` (``"png"``, ``"jpeg"``, ...) defaults to the source's own format,
    else PNG; ``quality`` and ``optimize`` go to Pillow's ``save``.
    """

    kind = "image"
    __slots__ = ("_caption", "_params")

    def __init__(self, image: Any, caption: str = "", format: str | None = None,
                 quality: int = 90, optimize: bool = False) -> None:
        require_pil()
        self._init_source(_copy_source(image))
        self._caption = str(caption)
        self._params = (normalize_format(format), quality, optimize)

    def _restore(self) -> None:
        self._caption = self._meta.get("caption", "")
        self._params = (self._meta.get("format"), 90, False)

    # -- encoding (flusher thread) ---------------------------------------------------------
    def _encode(self, source: Any) -> Encoded:
        from PIL import Image as PILImage

        fmt, quality, optimize = self._params
        kind, data, src_format = source
        if kind == "file":
            pil = PILImage.open(io.BytesIO(data))
            fmt = fmt or normalize_format(pil.format) or DEFAULT_FORMAT
            if fmt == normalize_format(pil.format) and not optimize:
                return self._meta_of(pil, fmt), data  # already encoded as asked: keep its bytes
        elif kind == "pil":
            pil = data
            fmt = fmt or normalize_format(src_format) or DEFAULT_FORMAT
        else:
            pixels = _to_uint8(data, kind == "chw")
            fmt = fmt or DEFAULT_FORMAT
            if fmt == "png" and not optimize:
                return self._array_meta(pixels), encode_png(pixels)
            pil = PILImage.fromarray(pixels)
        return self._meta_of(pil, fmt), _save(pil, fmt, quality, optimize)

    def _array_meta(self, pixels: np.ndarray) -> dict[str, Any]:
        channels = 1 if pixels.ndim == 2 else pixels.shape[2]
        return {"caption": self._caption, "format": "png", "width": pixels.shape[1],
                "height": pixels.shape[0], "mode": MODES[channels]}

    def _meta_of(self, pil: Any, fmt: str) -> dict[str, Any]:
        width, height = pil.size
        return {"caption": self._caption, "format": fmt, "width": width, "height": height,
                "mode": pil.mode}

    # -- reading ---------------------------------------------------------------------------
    @property
    def caption(self) -> str:
        """The caption given when tracking."""
        return self._caption

    @caption.setter
    def caption(self, value: str) -> None:
        self._caption = str(value)
        if self._meta is not None:
            self._meta["caption"] = self._caption

    @property
    def format(self) -> str:
        """The stored format, such as ``"png"`` or ``"jpeg"``."""
        return self.meta["format"]

    @property
    def width(self) -> int:
        """Width in pixels."""
        return self.meta["width"]

    @property
    def height(self) -> int:
        """Height in pixels."""
        return self.meta["height"]

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``."""
        return self.width, self.height

    @property
    def data(self) -> bytes:
        """The encoded image file's bytes (PNG, JPEG, ...)."""
        return self._bytes()

    def to_pil_image(self) -> Any:
        """Decode the stored bytes into a PIL image."""
        from PIL import Image as PILImage

        pil = PILImage.open(io.BytesIO(self._bytes()))
        pil.load()
        return pil

    def json(self) -> dict[str, Any]:
        """Caption, format, width and height, as Aim's ``Image.json()``."""
        meta = self.meta
        return {k: meta.get(k) for k in ("caption", "format", "width", "height")}


def _copy_source(image: Any) -> tuple[str, Any, str | None]:
    """A private copy of the input: ``(kind, data, source format)``; cheap for arrays."""
    if isinstance(image, np.ndarray):
        return "hwc", _checked_array(np.array(image, copy=True), "array"), None
    if isinstance(image, (str, os.PathLike)):
        return "file", _read_file(image), None
    module = type(image).__module__
    if module.startswith("torch") and hasattr(image, "detach"):
        return _copy_tensor(image)
    if module.startswith("PIL.") and hasattr(image, "save"):
        return _copy_pil(image)
    if module.startswith("matplotlib") and hasattr(image, "savefig"):
        buffer = io.BytesIO()
        image.savefig(buffer, format="png")  # a figure keeps changing: render it now
        return "file", buffer.getvalue(), "png"
    if hasattr(image, "__array__"):
        return "hwc", _checked_array(np.array(image, copy=True), "array"), None
    raise TypeError(f"Cannot make an Image from {type(image).__name__}: give a file path, a "
                    "PIL image, a numpy array, a torch tensor or a matplotlib figure.")


def _read_file(path: Any) -> bytes:
    if not os.path.isfile(path):
        raise ValueError(f"Invalid image file path {os.fspath(path)!r}: no such file.")
    with open(path, "rb") as f:
        return f.read()


def _copy_tensor(tensor: Any) -> tuple[str, Any, None]:
    tensor = tensor.detach()
    if tensor.ndim not in (2, 3):
        raise ValueError(f"An Image tensor must be HxW or CxHxW, got shape {tuple(tensor.shape)}.")
    if tensor.is_floating_point() and tensor.dtype.itemsize < 4:
        tensor = tensor.float()  # numpy has no bfloat16
    array = tensor.cpu().numpy()
    array = array.copy() if tensor.device.type == "cpu" else array
    kind = "chw" if array.ndim == 3 else "hwc"
    return kind, _checked_array(array, "tensor", channels_first=kind == "chw"), None


def _copy_pil(image: Any) -> tuple[str, Any, str | None]:
    if getattr(image, "n_frames", 1) > 1:  # animated: keep every frame in its own format
        buffer = io.BytesIO()
        image.save(buffer, format=image.format or "gif", save_all=True)
        return "file", buffer.getvalue(), image.format
    if not all(image.size):
        raise ValueError(f"An Image must be at least 1x1 pixel; the PIL image is {image.size[0]}x"
                         f"{image.size[1]}.")
    return "pil", image.copy(), image.format


def _checked_array(array: np.ndarray, what: str, channels_first: bool = False) -> np.ndarray:
    """Check shape and dtype now, so a bad image fails in ``Image()``, not in the flusher."""
    if array.ndim not in (2, 3):
        raise ValueError(f"An Image {what} must be 2-D or 3-D, got shape {array.shape}.")
    if array.dtype.kind not in "uifb":
        raise ValueError(f"An Image {what} must hold numbers, got dtype {array.dtype}.")
    height, width = array.shape[1:3] if channels_first else array.shape[:2]
    if not height or not width:
        raise ValueError(f"An Image must be at least 1x1 pixel; the {what} has shape "
                         f"{array.shape}.")
    if array.ndim == 3:
        channels = array.shape[0] if channels_first else array.shape[2]
        if channels not in (1, 2, 3, 4):
            raise ValueError(f"An Image {what} must have 1, 2, 3 or 4 channels, got shape "
                             f"{array.shape} ({'CxHxW' if channels_first else 'HxWxC'}).")
    return array


def _to_uint8(array: np.ndarray, channels_first: bool) -> np.ndarray:
    """Pixels as uint8 HxW or HxWxC: floats are taken in [0, 1], other ints are clipped."""
    if channels_first:
        array = np.transpose(array, (1, 2, 0))
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    kind = array.dtype.kind
    if kind == "f":
        array = np.rint(np.clip(np.nan_to_num(array), 0.0, 1.0) * 255.0)
    elif kind == "b":
        array = array * np.uint8(255)
    elif array.dtype != np.uint8:
        array = np.clip(array, 0, 255)
    return np.ascontiguousarray(array, dtype=np.uint8)


def _save(pil: Any, fmt: str, quality: int, optimize: bool) -> bytes:
    """Encode with Pillow; modes JPEG cannot hold are flattened onto white, as Aim does."""
    from PIL import Image as PILImage

    if fmt == "jpeg" and pil.mode not in ("RGB", "L", "CMYK"):
        rgba = pil.convert("RGBA")
        background = PILImage.new("RGB", pil.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.split()[-1])
        pil = background
    buffer = io.BytesIO()
    options = {"quality": quality, "optimize": optimize}
    if fmt == "png" and not optimize:
        # zlib level 1 with run-length matching: 1.5-3x faster than Pillow's default and
        # within a few percent of its size on photos, plots and masks (benchmarks/README.md).
        options.update(compress_level=1, compress_type=_Z_RLE)
    pil.save(buffer, format=fmt, **options)
    return buffer.getvalue()
