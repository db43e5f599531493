"""The image helpers every stage uses: tensors <-> PIL, uint8 quantisation, grids, PNGs that say
what made them, and the file names of generated images.

Pixels are float tensors in [0, 1], (B, 3, H, W) or (3, H, W); on disk they are 8-bit RGB, each
value rounded to the nearest of 0 .. 255 (so that a PNG read back is within 1/510 of what was
written). Generated images are named ``{prompt:04d}_{image:02d}.png``.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from dalle.utils.io import atomic_path

OUTPUT_NAME = re.compile(r"^(\d{4,})_(\d{2,})\.png$")


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(..., 3, H, W) float pixels in [0, 1] -> (..., H, W, 3) uint8, clamped and rounded."""
    pixels = images.detach().float().clamp(0, 1).movedim(-3, -1).cpu().numpy()
    return (pixels * 255).round().astype(np.uint8)


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """(B, 3, H, W) float pixels in [0, 1] -> RGB PIL images."""
    return [Image.fromarray(array) for array in to_uint8(images)]


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """A PIL image as a float32 RGB tensor (3, H, W) in [0, 1]."""
    pixels = np.array(image.convert("RGB"), dtype=np.uint8)  # (H, W, 3), a writable copy
    return torch.from_numpy(pixels).permute(2, 0, 1).float().div_(255).contiguous()


def area_resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, size, size) by area averaging (each output pixel the mean of the
    input pixels it covers); unchanged if already that size."""
    if images.shape[-2:] == (size, size):
        return images
    return torch.nn.functional.interpolate(images, size=(size, size), mode="area")


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) images, each blurred by a Gaussian of its own standard deviation ``sigma``
    (B,) in pixels (0 leaves it unchanged); separable, reflect-padded at the borders."""
    b, c, h, w = images.shape
    sigma = sigma.to(torch.float64).clamp(min=1e-6)
    radius = max(1, min(int(3 * float(sigma.max()) + 0.999), min(h, w) - 1))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-(offsets[None] ** 2) / (2 * sigma[:, None] ** 2))
    kernel = (kernel / kernel.sum(1, keepdim=True)).to(images.dtype).to(images.device)
    weight = kernel.repeat_interleave(c, dim=0)  # (B * C, K): one filter per channel of each
    x = images.reshape(1, b * c, h, w)
    x = torch.nn.functional.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = torch.nn.functional.conv2d(x, weight[:, None, :, None], groups=b * c)  # along H
    x = torch.nn.functional.conv2d(x, weight[:, None, None, :], groups=b * c)  # along W
    return x.reshape(b, c, h, w)


def image_grid(
    images: Sequence[Image.Image], columns: int, scale: int = 1, background=(255, 255, 255)
) -> Image.Image:
    """Images of one size laid out in rows of ``columns``, each enlarged ``scale`` times with
    nearest-neighbour sampling (pixels stay pixels)."""
    if not images:
        raise ValueError("a grid needs at least one image")
    if columns < 1 or scale < 1:
        raise ValueError(f"columns and scale must be at least 1, got {columns} and {scale}")
    w, h = images[0].size
    rows = -(-len(images) // columns)
    grid = Image.new("RGB", (columns * w, rows * h), background)
    for i, image in enumerate(images):
        if image.size != (w, h):
            raise ValueError(f"image {i} is {image.size}, the grid's cells are {(w, h)}")
        grid.paste(image.convert("RGB"), ((i % columns) * w, (i // columns) * h))
    if scale > 1:
        grid = grid.resize((grid.width * scale, grid.height * scale), Image.Resampling.NEAREST)
    return grid


def png_info(text: Mapping[str, object] | None) -> PngInfo:
    """PNG text chunks for ``text`` (None written as 'none', a tuple or list as its values
    joined by commas, as the command line takes them; NUL bytes, which PNG text cannot hold,
    replaced)."""
    info = PngInfo()
    for key, value in (text or {}).items():
        if isinstance(value, (tuple, list)):
            value = ",".join(str(v) for v in value)
        value = "none" if value is None else str(value)
        info.add_text(key, value.replace("\x00", "\ufffd"))
    return info


def save_png(
    image: Image.Image, path: str | os.PathLike, text: Mapping[str, object] | None = None
) -> Path:
    """Write ``image`` as a PNG atomically, with ``text`` as text chunks: the prompt, seed,
    model and settings that made it travel with the file."""
    path = Path(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG", pnginfo=png_info(text))
    return path


def png_bytes(image: Image.Image, text: Mapping[str, object] | None = None) -> bytes:
    """``image`` as PNG file bytes, with ``text`` as text chunks (as :func:`save_png`)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=png_info(text))
    return buffer.getvalue()


def output_name(prompt_index: int, image_index: int) -> str:
    """The file name of image ``image_index`` drawn for prompt ``prompt_index``."""
    return f"{prompt_index:04d}_{image_index:02d}.png"


def save_prompt_images(
    found: Iterable[tuple[int, Sequence[Image.Image]]],
    out: Path,
    fields: Callable[[int, int, Image.Image], Mapping[str, object]],
) -> set[str]:
    """Write a pipeline's ``(prompt index, images)`` pairs (``iter_images``) as they come, so an
    interrupted run keeps what it drew: ``out/{prompt:04d}_{image:02d}.png`` with the text
    chunks ``fields(prompt, image, its PIL image)``. Returns the names written."""
    written = set()
    for i, images in found:
        for j, image in enumerate(images):
            name = output_name(i, j)
            save_png(image, out / name, fields(i, j, image))
            written.add(name)
    return written


def parse_output_name(name: str) -> tuple[int, int] | None:
    """``(prompt, image)`` of a generated image's file name, None for any other file."""
    m = OUTPUT_NAME.match(name)
    return None if m is None else (int(m[1]), int(m[2]))
