"""Image: every input form, copies taken at construction, encoding only in to_storage()."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image as PILImage

from aim_core import Image
from aim_core.objects import Payload

RGB = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)


def stored(image: Image) -> Image:
    """The element as a reader gets it back: metadata and payload bytes only."""
    meta, data = image.to_storage()
    return Image.from_storage(meta, data)


def pixels(image: Image) -> np.ndarray:
    return np.asarray(stored(image).to_pil_image())


def test_numpy_forms_round_trip():
    assert np.array_equal(pixels(Image(RGB)), RGB)
    gray = RGB[:, :, 0]
    assert np.array_equal(pixels(Image(gray)), gray)
    assert np.array_equal(pixels(Image(gray[:, :, None])), gray)
    rgba = np.dstack([RGB, np.full(RGB.shape[:2], 200, np.uint8)])
    assert stored(Image(rgba)).meta["mode"] == "RGBA"
    assert np.array_equal(pixels(Image(RGB / 255.0)), RGB)
    assert np.array_equal(pixels(Image(RGB.astype(np.float32) / 255)), RGB)
    mask = gray > 128
    assert np.array_equal(pixels(Image(mask)), mask.astype(np.uint8) * 255)


def test_float_values_outside_unit_range_are_clipped():
    out = pixels(Image(np.array([[-0.5, 0.5, 2.0]])))
    assert out.tolist() == [[0, 128, 255]]


def test_torch_tensors_are_channels_first():
    torch = pytest.importorskip("torch")
    chw = torch.from_numpy(RGB).permute(2, 0, 1).contiguous()
    assert np.array_equal(pixels(Image(chw)), RGB)
    assert np.array_equal(pixels(Image(chw.float() / 255)), RGB)
    assert np.array_equal(pixels(Image(chw.to(torch.bfloat16) / 255)).shape, RGB.shape)
    assert np.array_equal(pixels(Image(torch.from_numpy(RGB[:, :, 1]))), RGB[:, :, 1])
    one_channel = torch.from_numpy(RGB[:, :, 2]).unsqueeze(0)
    assert np.array_equal(pixels(Image(one_channel)), RGB[:, :, 2])
    with pytest.raises(ValueError, match="HxW or CxHxW"):
        Image(torch.zeros(1, 3, 4, 4))


def test_pil_image_and_files(tmp_path):
    pil = PILImage.fromarray(RGB)
    assert np.array_equal(pixels(Image(pil)), RGB)
    path = tmp_path / "a.png"
    pil.save(path)
    from_path = Image(str(path), caption="from a file")
    assert from_path.to_storage()[1] == path.read_bytes()  # already PNG: kept as it is
    assert np.array_equal(pixels(Image(path)), RGB)
    jpeg = tmp_path / "b.jpg"
    pil.save(jpeg, quality=95)
    element = stored(Image(jpeg))
    assert (element.format, element.size) == ("jpeg", (24, 16))
    assert element.data == jpeg.read_bytes()
    with pytest.raises(ValueError, match="no such file"):
        Image(str(tmp_path / "missing.png"))


def test_format_quality_and_transparency_to_jpeg():
    rgba = np.dstack([RGB, np.zeros(RGB.shape[:2], np.uint8)])  # fully transparent
    element = stored(Image(rgba, format="jpg", quality=95))
    assert element.format == "jpeg"
    assert element.data[:2] == b"\xff\xd8"
    assert np.asarray(element.to_pil_image()).min() > 240  # flattened onto white
    small = Image(RGB, format="JPEG", quality=10).to_storage()[1]
    large = Image(RGB, format="jpeg", quality=95).to_storage()[1]
    assert len(small) < len(large)


def test_matplotlib_figure_is_rendered_when_constructed():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1), dpi=50)
    ax.plot([0, 1], [1, 0])
    element = Image(fig)
    ax.plot([0, 1], [0, 1])  # later changes are not part of the tracked image
    plt.close(fig)
    back = stored(element)
    assert (back.format, back.size) == ("png", (100, 50))


def test_constructor_keeps_a_copy():
    array = RGB.copy()
    element = Image(array)
    array[:] = 0
    assert np.array_equal(pixels(element), RGB)
    pil = PILImage.fromarray(RGB)
    element = Image(pil)
    pil.paste((0, 0, 0), (0, 0, 24, 16))
    assert np.array_equal(pixels(element), RGB)


def test_metadata_caption_and_equality():
    element = Image(RGB, caption="val sample 3")
    meta, data = element.to_storage()
    assert meta == {"caption": "val sample 3", "format": "png", "width": 24, "height": 16,
                    "mode": "RGB"}
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert element.json() == {"caption": "val sample 3", "format": "png", "width": 24,
                              "height": 16}
    element.caption = "renamed"
    assert element.to_storage()[0]["caption"] == "renamed"
    assert stored(element) == element
    assert Image(RGB) != Image(RGB[::-1])


def test_payload_loads_only_when_pixels_are_asked_for():
    meta, data = Image(RGB).to_storage()
    reads = []
    payload = Payload(lambda: reads.append(1) or data, len(data))
    element = Image.from_storage(meta, payload)
    assert (element.caption, element.size, element.format) == ("", (24, 16), "png")
    assert reads == []
    assert np.array_equal(np.asarray(element.to_pil_image()), RGB)
    element.to_pil_image()
    assert reads == [1]


@pytest.mark.parametrize("bad, error", [
    (np.zeros((2, 2, 2, 2), np.uint8), ValueError),
    (np.zeros((4, 4, 5), np.uint8), ValueError),
    (np.array([["a"]]), ValueError),
    (object(), TypeError),
    (12, TypeError),
])
def test_bad_inputs_fail_in_the_constructor(bad, error):
    with pytest.raises(error):
        Image(bad)


@pytest.mark.parametrize("shape", [(0, 0, 3), (0, 5), (5, 0), (4, 0, 1)])
def test_an_empty_image_fails_in_the_constructor_saying_so(shape):
    with pytest.raises(ValueError, match="at least 1x1 pixel"):
        Image(np.zeros(shape, np.uint8))


def test_an_empty_tensor_or_pil_image_fails_in_the_constructor():
    torch = pytest.importorskip("torch")
    from PIL import Image as PILImage

    with pytest.raises(ValueError, match="at least 1x1 pixel"):
        Image(torch.zeros(3, 0, 4))
    with pytest.raises(ValueError, match="at least 1x1 pixel"):
        Image(PILImage.new("RGB", (0, 3)))


def python_prints(code: str) -> str:
    """What ``code`` prints in a fresh interpreter (which must exit cleanly)."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_constructor_does_no_pillow_work():
    printed = python_prints(
        "import sys, numpy as np\n"
        "from aim_core import Image\n"
        "Image(np.zeros((64, 64, 3), np.uint8), caption='c')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'PIL'))\n")
    assert printed == "[]"


def test_without_pillow_image_says_what_to_install():
    printed = python_prints(
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'PIL' or name.startswith('PIL.'):\n"
        "            raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import numpy as np\n"
        "from aim_core import Image, Text\n"
        "Text('still fine')\n"
        "try:\n"
        "    Image(np.zeros((4, 4), np.uint8))\n"
        "except ImportError as exc:\n"
        "    print(exc)\n")
    assert "pip install 'aim-core[media]'" in printed


def test_import_aim_core_stays_light():
    printed = python_prints(
        "import sys, aim_core\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'PIL', 'torch', 'plotly', 'matplotlib'}))\n")
    assert printed == "[]"


def test_stored_bytes_decode_with_plain_pillow():
    data = Image(RGB).to_storage()[1]
    assert np.array_equal(np.asarray(PILImage.open(io.BytesIO(data))), RGB)


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 1), (5, 7, 2), (5, 7, 3), (5, 7, 4), (1, 1, 3),
                                   (40, 3, 3)])
def test_array_png_writer_is_lossless_for_every_channel_count(shape):
    rng = np.random.default_rng(sum(shape))
    smooth = np.cumsum(rng.integers(0, 3, shape), axis=0).astype(np.uint8)
    for array in (rng.integers(0, 256, shape, dtype=np.uint8), smooth):
        back = stored(Image(array))
        pil = back.to_pil_image()
        expected = array[:, :, 0] if array.ndim == 3 and array.shape[2] == 1 else array
        assert np.array_equal(np.asarray(pil), expected)
        assert pil.mode == back.meta["mode"] and back.size == (shape[1], shape[0])


def test_array_png_writer_compresses_smooth_pictures():
    # A ramp that starts 7 higher on every row: deflate finds no repeats in the raw bytes (not
    # even from row to row), only in what the Sub filter leaves (5 after 5).
    array = ((np.arange(50)[None, :] * 5 + np.arange(30)[:, None] * 7) % 256).astype(np.uint8)
    data = Image(array).to_storage()[1]
    assert np.array_equal(np.asarray(PILImage.open(io.BytesIO(data))), array)
    assert len(data) < array.size // 4  # the filter left runs that deflate well


def test_array_png_writer_without_isal_uses_zlib():
    printed = python_prints(
        "import io, sys, numpy as np\n"
        "sys.modules['isal'] = None  # as if the [media] extra's isal were not installed\n"
        "from PIL import Image as PILImage\n"
        "from aim_core.objects import png\n"
        "assert png._deflater() is png._zlib_deflate\n"
        "array = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)\n"
        "back = np.asarray(PILImage.open(io.BytesIO(png.encode_png(array))))\n"
        "print(np.array_equal(back, array))\n")
    assert printed == "True"
