import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from dalle.data.images import BadImageError, load_image


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, followed by a few bytes of junk pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"\x00" * 16)


def reason_of(source, **kwargs) -> str:
    with pytest.raises(BadImageError) as info:
        load_image(source, **kwargs)
    return info.value.reason


def test_load_png_from_path_and_bytes(tmp_path, img):
    image = img.random(0)
    image.save(tmp_path / "x.png")
    from_path = load_image(tmp_path / "x.png")
    from_bytes = load_image(img.to_bytes(image))
    assert from_path.mode == "RGB" and from_path.size == (20, 30)
    np.testing.assert_array_equal(np.asarray(from_path), np.asarray(image))
    np.testing.assert_array_equal(np.asarray(from_bytes), np.asarray(image))


def test_bad_files_have_countable_reasons(tmp_path, img):
    assert issubclass(BadImageError, ValueError)
    assert reason_of(img.garbage) == "not an image"
    assert reason_of(img.truncated_jpeg()) == "truncated image"
    assert reason_of(tmp_path / "nope.png") == "missing file"
    assert reason_of(tmp_path) == "unreadable file"  # a directory


def test_pixel_limit_is_checked_from_the_header_before_decoding():
    data = png_header_only(5000, 5000)
    assert reason_of(data, max_pixels=1_000_000) == "too many pixels"
    # With a generous limit the (junk) pixel data is decoded and fails differently.
    assert reason_of(data, max_pixels=100_000_000) in ("corrupt image", "truncated image")


def test_a_thin_strip_is_refused_before_it_is_scaled_up(img):
    # 1 x 20,000 is a few bytes, but scaled to a shorter side of 256 it would be 1.3 gigapixels
    assert reason_of(png_header_only(1, 20_000)) == "too thin"
    assert reason_of(png_header_only(3300, 100)) == "too thin"  # over 32 : 1
    assert load_image(img.to_bytes(img.random(0, (320, 10)))).size == (320, 10)  # 32 : 1 is fine


def test_pil_decompression_bomb_is_too_many_pixels():
    assert reason_of(png_header_only(20_000, 20_000), max_pixels=10**12) == "too many pixels"


def test_limit_counts_width_times_height(img):
    data = img.to_bytes(img.random(0, (50, 40)))
    assert reason_of(data, max_pixels=1999) == "too many pixels"
    assert load_image(data, max_pixels=2000).size == (50, 40)


def test_transparency_is_composited_on_white(img):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)  # opaque
    rgba[1, 1] = (10, 20, 30, 0)  # fully transparent
    out = np.asarray(load_image(img.to_bytes(Image.fromarray(rgba, "RGBA"))))
    assert out[0, 0].tolist() == [10, 20, 30]
    assert out[1, 1].tolist() == [255, 255, 255]
    la = Image.fromarray(rgba[..., [0, 3]], "LA")
    assert np.asarray(load_image(img.to_bytes(la)))[1, 1].tolist() == [255, 255, 255]


def test_palette_cmyk_and_gray_become_rgb(img):
    base = img.random(3)
    palette = base.convert("P")
    out = load_image(img.to_bytes(palette))
    np.testing.assert_array_equal(np.asarray(out), np.asarray(palette.convert("RGB")))
    buf = io.BytesIO()
    base.convert("CMYK").save(buf, "TIFF")
    cmyk = load_image(buf.getvalue())
    assert cmyk.mode == "RGB" and cmyk.size == base.size
    gray = load_image(img.to_bytes(base.convert("L")))
    assert np.asarray(gray)[..., 0].tolist() == np.asarray(gray)[..., 2].tolist()


def test_16_bit_gray_is_rescaled_not_clipped(img):
    values = np.array([[0, 257 * 128], [65535, 257 * 7]], dtype=np.uint16)
    sixteen = Image.fromarray(values)
    assert sixteen.mode.startswith("I;16")
    out = np.asarray(load_image(img.to_bytes(sixteen)))
    assert out.shape == (2, 2, 3)
    assert out[..., 1].tolist() == [[0, 128], [255, 7]]
