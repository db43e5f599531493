"""Image + caption transforms: resize, crop, small rotations, noise and caption-aware flips.

All randomness comes from the ``numpy.random.Generator`` passed in, so a dataset that derives it
from ``(seed, epoch, index)`` gives the same sample every time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from PIL import Image

from dalle.config import Config, ConfigError
from dalle.utils.images import pil_to_tensor

_LEFT_RIGHT = re.compile(r"\b(left|right|leftmost|rightmost)\b", re.IGNORECASE)
_SWAP = {"left": "right", "right": "left", "leftmost": "rightmost", "rightmost": "leftmost"}


@dataclass(frozen=True)
class TransformConfig(Config):
    """How a decoded image becomes a square (3, image_size, image_size) tensor."""

    image_size: int
    crop: Literal["center", "random"] = "center"
    resize: bool = True  # shorter side to image_size; if False crop at native size
    rotation_degrees: float = 0.0  # uniform in [-d, d], corners filled black
    noise_std: float = 0.0  # gaussian noise on [0, 1] pixels, then clamped
    hflip_prob: float = 0.0  # flips swap "left" and "right" in the caption

    def __post_init__(self) -> None:
        if self.image_size < 1:
            raise ConfigError(f"image_size must be >= 1, got {self.image_size}")
        if self.crop not in ("center", "random"):
            raise ConfigError(f"crop must be 'center' or 'random', got {self.crop!r}")
        if not 0.0 <= self.rotation_degrees <= 180.0:
            raise ConfigError(f"rotation_degrees must be in [0, 180], got {self.rotation_degrees}")
        if self.noise_std < 0.0:
            raise ConfigError(f"noise_std must be >= 0, got {self.noise_std}")
        if not 0.0 <= self.hflip_prob <= 1.0:
            raise ConfigError(f"hflip_prob must be in [0, 1], got {self.hflip_prob}")


@dataclass(frozen=True)
class Augmentation(Config):
    """The random part of a transform, set per training run (the image size is the model's):
    none by default. The CelebA recipe crops at random, rotates by a few degrees and perturbs
    pixels (the founding documents' augmentation)."""

    crop: Literal["center", "random"] = "center"
    rotation_degrees: float = 0.0
    noise_std: float = 0.0
    hflip_prob: float = 0.0

    @property
    def random(self) -> bool:
        return self != Augmentation()

    def transform(self, image_size: int) -> TransformConfig:
        return TransformConfig(image_size, self.crop, True, self.rotation_degrees, self.noise_std,
                               self.hflip_prob)  # fmt: skip


def swap_left_right(caption: str) -> str:
    """Swap the whole words left/right (and leftmost/rightmost), keeping their case.

    >>> swap_left_right("a cat to the Left of a dog, right?")
    'a cat to the Right of a dog, left?'
    """

    def swap(match: re.Match[str]) -> str:
        word = match.group(0)
        new = _SWAP[word.lower()]
        if word.isupper():
            return new.upper()
        if word[0].isupper():
            return new.capitalize()
        return new

    return _LEFT_RIGHT.sub(swap, caption)


def resize_shorter_side(image: Image.Image, size: int) -> Image.Image:
    """Scale so the shorter side is ``size`` (Lanczos when shrinking, bicubic when enlarging)."""
    width, height = image.size
    scale = size / min(width, height)
    new_size = (max(size, round(width * scale)), max(size, round(height * scale)))
    if new_size == image.size:
        return image
    if scale < 1:
        # reducing_gap first shrinks by an integer factor with a box filter: much faster on large
        # photos, and indistinguishable from a full Lanczos at a gap of 3.
        return image.resize(new_size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return image.resize(new_size, Image.Resampling.BICUBIC)


class ImageTransform:
    """Apply a :class:`TransformConfig` to ``(image, caption)``; see ``__call__``."""

    def __init__(self, config: TransformConfig) -> None:
        self.config = config

    def __call__(
        self, image: Image.Image, caption: str, rng: np.random.Generator
    ) -> tuple[torch.Tensor, str]:
        """Resize, rotate, crop, maybe flip (swapping left/right in the caption), add noise.

        Returns a float32 tensor (3, image_size, image_size) in [0, 1] and the caption.
        """
        cfg = self.config
        size = cfg.image_size
        image = image.convert("RGB")
        if cfg.resize or min(image.size) < size:  # too small to crop: enlarge just enough
            image = resize_shorter_side(image, size)
        if cfg.rotation_degrees > 0:
            angle = float(rng.uniform(-cfg.rotation_degrees, cfg.rotation_degrees))
            image = image.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=(0, 0, 0))
        image = self._crop(image, rng)
        if cfg.hflip_prob > 0 and rng.random() < cfg.hflip_prob:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            caption = swap_left_right(caption)
        tensor = pil_to_tensor(image)  # (3, size, size)
        if cfg.noise_std > 0:
            noise = rng.standard_normal(tensor.shape, dtype=np.float32) * cfg.noise_std
            tensor = (tensor + torch.from_numpy(noise)).clamp_(0.0, 1.0)
        return tensor, caption

    def _crop(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        size = self.config.image_size
        width, height = image.size
        if self.config.crop == "random":
            left = int(rng.integers(0, width - size + 1))
            top = int(rng.integers(0, height - size + 1))
        else:
            left, top = (width - size) // 2, (height - size) // 2
        return image.crop((left, top, left + size, top + size))

    def __repr__(self) -> str:
        return f"ImageTransform({self.config!r})"


def as_transform(transform: ImageTransform | TransformConfig) -> ImageTransform:
    """Accept either a config or a ready transform."""
    if isinstance(transform, TransformConfig):
        return ImageTransform(transform)
    if isinstance(transform, ImageTransform):
        return transform
    raise TypeError(
        f"expected an ImageTransform or TransformConfig, got {type(transform).__name__}"
    )
