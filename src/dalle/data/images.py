"""Reading one image file, safely: every failure becomes a :class:`BadImageError` with a reason."""

from __future__ import annotations

import io
import logging
import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")

# 64 megapixels (e.g. 8000 x 8000) decodes to ~190 MB of RGB: larger than any photo a
# text-to-image pipeline needs, small enough that a decompression bomb cannot exhaust memory.
# PIL's own guard (2 * Image.MAX_IMAGE_PIXELS, ~179 MP) still applies above this.
DEFAULT_MAX_PIXELS = 64_000_000
# Longer side over shorter side. Images are scaled so that their shorter side fits the model, so
# a thin strip grows to hundreds of megapixels (1 x 20,000 at 256: 256 x 5,120,000) before it is
# cropped; past 32 : 1 (a banner is about 8 : 1) an image holds no square picture anyway.
MAX_ASPECT_RATIO = 32


class BadImageError(ValueError):
    """An image that cannot be used; ``reason`` is short and countable ("corrupt image", ...)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def load_image(
    source: str | os.PathLike | bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    keep_alpha: bool = False,
) -> Image.Image:
    """Decode ``source`` (a path or the file's bytes) to a fully loaded RGB image (with
    ``keep_alpha``, RGBA if it has transparency: masks).

    The size is checked from the header before any pixel is decoded, so an image over
    ``max_pixels`` (width * height) costs nothing. Raises :class:`BadImageError` with reason
    "missing file", "unreadable file", "not an image", "too many pixels", "too thin" (over
    ``MAX_ASPECT_RATIO`` : 1), "truncated image", "corrupt image" or "unsupported mode".
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decode(io.BytesIO(bytes(source)), max_pixels, keep_alpha)
    try:
        with open(source, "rb") as f:
            return _decode(f, max_pixels, keep_alpha)
    except FileNotFoundError:
        raise BadImageError("missing file", str(source)) from None
    except OSError as e:  # a directory, no permission, an I/O error
        raise BadImageError("unreadable file", str(e)) from None


def _decode(f: io.IOBase, max_pixels: int, keep_alpha: bool = False) -> Image.Image:
    with warnings.catch_warnings():
        # Our own limit is checked below; PIL's warning would only be noise.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(f)
        except Image.DecompressionBombError as e:
            raise BadImageError("too many pixels", str(e)) from None
        except UnidentifiedImageError:
            raise BadImageError("not an image") from None
        except Exception as e:  # PIL plugins raise many types on malformed headers
            raise _decode_error(e) from None
        with image:
            width, height = image.size
            if width * height > max_pixels:
                raise BadImageError("too many pixels", f"{width}x{height} > {max_pixels}")
            if width == 0 or height == 0:
                raise BadImageError("corrupt image", f"empty size {width}x{height}")
            if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
                raise BadImageError("too thin", f"{width}x{height}: over {MAX_ASPECT_RATIO} : 1")
            try:
                image.load()
                image = _apply_exif_orientation(image)
                if keep_alpha and _has_alpha(image):
                    return image.convert("RGBA")
                return to_rgb(image)
            except Image.DecompressionBombError as e:
                raise BadImageError("too many pixels", str(e)) from None
            except BadImageError:
                raise
            except Exception as e:
                raise _decode_error(e) from None


def _decode_error(e: Exception) -> BadImageError:
    reason = "truncated image" if "truncated" in str(e).lower() else "corrupt image"
    return BadImageError(reason, f"{type(e).__name__}: {e}")


def _apply_exif_orientation(image: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image) or image
    except Exception as e:  # a broken EXIF block should not cost us the pixels
        logger.debug("ignoring unreadable EXIF orientation: %s", e)
        return image


def _has_alpha(image: Image.Image) -> bool:
    return "A" in image.getbands() or (image.mode == "P" and "transparency" in image.info)


def to_rgb(image: Image.Image) -> Image.Image:
    """A new RGB image: transparency composited on white, 16-bit and float gray rescaled."""
    mode = image.mode
    if mode == "RGB":
        return image.copy()
    if (mode == "P" and "transparency" in image.info) or mode in ("PA", "LA", "La", "RGBA", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode.startswith("I") or mode == "F":
        return Image.fromarray(_gray_to_uint8(np.asarray(image), mode)).convert("RGB")
    try:
        return image.convert("RGB")  # L, 1, P, CMYK, YCbCr, ...
    except (ValueError, OSError) as e:
        raise BadImageError("unsupported mode", f"{mode}: {e}") from None


def _gray_to_uint8(pixels: np.ndarray, mode: str) -> np.ndarray:
    """Map 16-bit (I;16*, or I holding 16-bit values) or float gray to 0..255."""
    values = pixels.astype(np.float64)
    if mode == "F":
        scale = 255.0 if values.size and values.max() <= 1.0 else 1.0
    elif mode.startswith("I;16") or (values.size and values.max() > 255):
        scale = 255.0 / 65535.0
    else:
        scale = 1.0
    return np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
