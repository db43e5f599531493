import numpy as np
import pytest
import torch
from PIL import Image

from dalle.config import ConfigError
from dalle.data.transforms import ImageTransform, TransformConfig, swap_left_right
from dalle.utils.images import pil_to_tensor


def coordinate_image(width: int, height: int) -> Image.Image:
    """Pixel (x, y) has colour (x, y, 7): crops can be read back from the pixels."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[..., 0] = np.arange(width)[None, :]
    pixels[..., 1] = np.arange(height)[:, None]
    pixels[..., 2] = 7
    return Image.fromarray(pixels)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        ("a cat to the left of a dog", "a cat to the right of a dog"),
        ("Left: a cat. RIGHT: a dog, on the right", "Right: a cat. LEFT: a dog, on the left"),
        ("the leftmost of three", "the rightmost of three"),
        ("a left-handed bright leftover", "a right-handed bright leftover"),
        ("nothing to swap", "nothing to swap"),
    ],
)
def test_swap_left_right(caption, expected):
    assert swap_left_right(caption) == expected
    assert swap_left_right(expected) == caption


def test_to_tensor_shape_dtype_range():
    image = coordinate_image(5, 3)
    tensor = pil_to_tensor(image)
    assert tensor.shape == (3, 3, 5) and tensor.dtype == torch.float32
    assert tensor[0, 2, 4].item() == pytest.approx(4 / 255)
    assert tensor[1, 2, 4].item() == pytest.approx(2 / 255)


def test_center_crop_without_resize_takes_the_middle():
    out, caption = ImageTransform(TransformConfig(image_size=4, resize=False))(
        coordinate_image(4, 6), "c", rng()
    )
    assert caption == "c"
    assert out.shape == (3, 4, 4)
    xs = (out[0] * 255).round().long()
    ys = (out[1] * 255).round().long()
    assert xs[0].tolist() == [0, 1, 2, 3]
    assert ys[:, 0].tolist() == [1, 2, 3, 4]  # rows 1..4 of 0..5


def test_resize_then_crop_gives_square_in_unit_range():
    image = Image.fromarray(rng(1).integers(0, 256, (30, 20, 3), dtype=np.uint8))
    cfg = TransformConfig(
        image_size=8, crop="random", rotation_degrees=10, noise_std=0.1, hflip_prob=0.5
    )
    out, _ = ImageTransform(cfg)(image, "x", rng(2))
    assert out.shape == (3, 8, 8) and out.dtype == torch.float32
    assert 0.0 <= out.min().item() and out.max().item() <= 1.0


def test_no_rotation_no_noise_leaves_pixels_unchanged():
    image = Image.fromarray(rng(3).integers(0, 256, (8, 8, 3), dtype=np.uint8))
    plain = TransformConfig(image_size=8, rotation_degrees=0.0, noise_std=0.0)
    out, _ = ImageTransform(plain)(image, "x", rng())
    assert torch.equal(out, pil_to_tensor(image))
    # ... and the same test notices when they are on.
    rotated, _ = ImageTransform(plain.replace(rotation_degrees=20.0))(image, "x", rng())
    noisy, _ = ImageTransform(plain.replace(noise_std=0.05))(image, "x", rng())
    assert not torch.equal(rotated, out)
    assert not torch.equal(noisy, out)
    assert 0.0 <= noisy.min().item() and noisy.max().item() <= 1.0


def test_flip_mirrors_image_and_swaps_caption():
    image = coordinate_image(6, 6)
    flip = ImageTransform(TransformConfig(image_size=6, hflip_prob=1.0))
    out, caption = flip(image, "a square to the left of a circle", rng())
    assert caption == "a square to the right of a circle"
    assert torch.equal(out, pil_to_tensor(image).flip(dims=[2]))
    assert (out[0, 0, 0] * 255).round().item() == 5  # leftmost column was x = 5
    same, caption = ImageTransform(TransformConfig(image_size=6))(image, "to the left", rng())
    assert caption == "to the left" and torch.equal(same, pil_to_tensor(image))


def test_same_rng_same_output_different_rng_different_output():
    image = Image.fromarray(rng(4).integers(0, 256, (30, 20, 3), dtype=np.uint8))
    cfg = TransformConfig(image_size=8, crop="random", noise_std=0.1, rotation_degrees=5)
    transform = ImageTransform(cfg)
    a, _ = transform(image, "x", rng(11))
    b, _ = transform(image, "x", rng(11))
    c, _ = transform(image, "x", rng(12))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_config_round_trips_and_validates():
    cfg = TransformConfig(image_size=64, crop="random", hflip_prob=0.5)
    assert TransformConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ConfigError, match="crop"):
        TransformConfig.from_dict({"image_size": 64, "crop": "middle"})
    with pytest.raises(ConfigError, match="hflip_prob"):
        TransformConfig(image_size=64, hflip_prob=1.5)
    with pytest.raises(ConfigError, match="unknown"):
        TransformConfig.from_dict({"image_size": 64, "flip": True})
