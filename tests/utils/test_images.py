"""The shared image helpers: quantisation, conversions, grids, PNG text chunks, output names."""

import numpy as np
import pytest
import torch
from PIL import Image

from dalle.utils.images import (
    image_grid,
    output_name,
    parse_output_name,
    pil_to_tensor,
    save_png,
    to_pil,
    to_uint8,
)


def test_quantisation_rounds_to_the_nearest_level_and_clamps():
    pixels = torch.tensor([0.0, 1 / 510 - 1e-4, 1 / 510 + 1e-4, 0.5, 1.0, 1.7, -0.2])
    images = pixels.view(1, 1, 1, 7).expand(1, 3, 1, 7)
    assert to_uint8(images)[0, 0, :, 0].tolist() == [0, 0, 1, 128, 255, 255, 0]
    assert to_uint8(images).shape == (1, 1, 7, 3) and to_uint8(images).dtype == np.uint8
    assert to_uint8(images[0]).shape == (1, 7, 3)  # one image without a batch


def test_pil_and_tensor_round_trip_exactly_for_8_bit_images():
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    tensor = pil_to_tensor(Image.fromarray(array))
    assert tensor.shape == (3, 5, 7) and tensor.dtype == torch.float32
    assert np.array_equal(np.asarray(to_pil(tensor[None])[0]), array)
    gray = pil_to_tensor(Image.fromarray(array[:, :, 0], mode="L"))  # converted to RGB
    assert torch.equal(gray[0], gray[2])


def test_grid_lays_out_rows_and_scales_by_nearest_neighbour():
    tiles = [Image.new("RGB", (2, 3), (10 * i, 0, 0)) for i in range(5)]
    grid = image_grid(tiles, columns=2, scale=3, background=(0, 0, 255))
    assert grid.size == (2 * 2 * 3, 3 * 3 * 3)
    cells = np.asarray(grid)
    assert tuple(cells[0, 0]) == (0, 0, 0) and tuple(cells[0, 6]) == (10, 0, 0)
    assert tuple(cells[9, 0]) == (20, 0, 0) and tuple(cells[18, 0]) == (40, 0, 0)
    assert tuple(cells[18, 6]) == (0, 0, 255)  # the empty cell
    with pytest.raises(ValueError, match="cells are"):
        image_grid([tiles[0], Image.new("RGB", (3, 3))], columns=2)
    with pytest.raises(ValueError, match="at least one"):
        image_grid([], columns=2)


def test_png_text_chunks_travel_with_the_file(tmp_path):
    path = save_png(Image.new("RGB", (4, 4)), tmp_path / "a.png", {"prompt": "a red circle",
                                                                  "top_p": None, "seed": 3,
                                                                  "interval": (0.0, 0.6)})  # fmt: skip
    with Image.open(path) as im:
        assert im.text == {"prompt": "a red circle", "top_p": "none", "seed": "3",
                           "interval": "0.0,0.6"}  # fmt: skip
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no temporary file left


def test_output_names_round_trip():
    assert output_name(3, 1) == "0003_01.png"
    assert parse_output_name(output_name(12345, 120)) == (12345, 120)
    for other in ("prompts.txt", "failures.png", "0003_1.png", "3_01.png", "0003_01.jpg"):
        assert parse_output_name(other) is None


def test_gaussian_blur_against_the_closed_form():
    from dalle.utils.images import gaussian_blur

    x = torch.zeros(3, 2, 15, 15)
    x[:, :, 7, 7] = 1.0  # a point: its blur is the normalised 2-D Gaussian
    sigma = torch.tensor([0.0, 0.5, 1.0])
    out = gaussian_blur(x, sigma)
    torch.testing.assert_close(out[0], x[0])  # sigma 0 leaves the image alone
    for i in (1, 2):
        r = torch.arange(-7, 8, dtype=torch.float64)
        g = torch.exp(-(r**2) / (2 * sigma[i].double() ** 2))
        g = g / g[(r.abs() <= max(1, int(3 * sigma.max() + 0.999)))].sum()
        g[r.abs() > max(1, int(3 * sigma.max() + 0.999))] = 0
        want = (g[:, None] * g[None, :]).float()
        torch.testing.assert_close(out[i, 0], want, atol=1e-6, rtol=1e-5)
        assert abs(out[i].sum().item() - 2.0) < 1e-5  # mass kept away from the borders
    flat = torch.full((2, 3, 6, 6), 0.3)
    torch.testing.assert_close(gaussian_blur(flat, torch.tensor([0.7, 2.0])), flat)


def test_area_resize_averages_blocks():
    from dalle.utils.images import area_resize

    x = torch.arange(16.0).view(1, 1, 4, 4)
    torch.testing.assert_close(area_resize(x, 2), torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))
    assert area_resize(x, 4) is x
