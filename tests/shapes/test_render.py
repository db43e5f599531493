import numpy as np
import pytest

from dalle.shapes.render import render_scene, shape_mask, soft_shape_mask
from dalle.shapes.spec import COLOURS, Scene, ShapeObject


def as_rows(mask: np.ndarray) -> list[str]:
    return ["".join("1" if v else "0" for v in row) for row in mask]


def test_circle_4_hand_drawn():
    # pixel centres within radius 2 of (2, 2): the four corners fall outside
    assert as_rows(shape_mask("circle", 4)) == ["0110", "1111", "1111", "0110"]


def test_triangle_5_hand_drawn():
    # apex (2, 0), base corners (0, 4) and (4, 4)
    assert as_rows(shape_mask("triangle", 5)) == ["00100", "00100", "01110", "01110", "11111"]


def test_cross_9_bars_one_third_thick():
    assert as_rows(shape_mask("cross", 9)) == [
        "000111000",
        "000111000",
        "000111000",
        "111111111",
        "111111111",
        "111111111",
        "000111000",
        "000111000",
        "000111000",
    ]


def test_square_fills_box_and_masks_fill_their_box_edges():
    assert shape_mask("square", 3, 2).shape == (2, 3) and shape_mask("square", 3, 2).all()
    for shape, size in (("circle", 12), ("triangle", 13), ("cross", 12)):
        m = shape_mask(shape, size)
        # every shape touches all four sides of its box, so its bounding box is the box
        assert m[0].any() and m[-1].any() and m[:, 0].any() and m[:, -1].any(), shape


def test_even_triangle_apex_falls_between_pixels():
    # for even s the apex x0 + (s - 1) / 2 is a half-pixel point: no pixel centre on row 0
    m = shape_mask("triangle", 12)
    assert not m[0].any() and m[1, 5:7].all() and m[-1].all()


def test_soft_mask_is_coverage():
    soft = soft_shape_mask("square", 5, 7)
    assert soft.shape == (7, 5) and np.allclose(soft, 1.0)
    circle = soft_shape_mask("circle", 10, 10, supersample=8)
    # area of the inscribed circle: pi r^2 with r = 5
    assert abs(circle.sum() - np.pi * 25) < 1.0


def test_unknown_shape_is_an_error():
    with pytest.raises(ValueError, match="unknown shape 'hexagon'"):
        shape_mask("hexagon", 4)


def test_render_scene_fills_exact_colours_on_black():
    obj = ShapeObject("orange", "square", "small", x0=5, y0=7, size_px=10)
    image = render_scene(Scene((obj,)))
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert (image[7:17, 5:15] == COLOURS["orange"]).all()
    image[7:17, 5:15] = 0
    assert not image.any()
