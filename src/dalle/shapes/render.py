"""Rasterising shapes and scenes with exact integer arithmetic (same bytes on every machine).

A pixel (x, y) is filled when its centre lies inside the shape. Coordinates below are pixel
indices within the shape's box of ``w`` x ``h`` pixels; the spec's box is square (w = h = s).
"""

from __future__ import annotations

import numpy as np

from dalle.shapes.spec import CANVAS, COLOURS, SHAPES, Scene


def _grid(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:h, 0:w]
    return xs.astype(np.int64), ys.astype(np.int64)


def _circle(w: int, h: int) -> np.ndarray:
    # Ellipse inscribed in the box: ((x + 1/2 - w/2) / (w/2))^2 + (... y ...)^2 <= 1, times (w h)^2.
    xs, ys = _grid(w, h)
    return (2 * xs + 1 - w) ** 2 * h * h + (2 * ys + 1 - h) ** 2 * w * w <= w * w * h * h


def _square(w: int, h: int) -> np.ndarray:
    return np.ones((h, w), dtype=bool)


def _triangle(w: int, h: int) -> np.ndarray:
    # Vertices ((w-1)/2, 0), (0, h-1), (w-1, h-1); inside both slanted edges (doubled to stay integer).
    xs, ys = _grid(w, h)
    rise = (w - 1) * (h - 1 - ys)
    return (2 * xs * (h - 1) >= rise) & (2 * (w - 1 - xs) * (h - 1) >= rise)


def _bar(n: int) -> np.ndarray:
    """Which of ``n`` rows (or columns) the middle third covers: n/3 <= centre <= 2n/3."""
    centres_x2 = 2 * np.arange(n) + 1  # pixel centres, doubled; times 3 to compare with n/3
    return (3 * centres_x2 >= 2 * n) & (3 * centres_x2 <= 4 * n)


def _cross(w: int, h: int) -> np.ndarray:
    rows = _bar(h)[:, None]  # horizontal bar spans the full width
    cols = _bar(w)[None, :]  # vertical bar spans the full height
    return rows | cols


_MASKS = {"circle": _circle, "square": _square, "triangle": _triangle, "cross": _cross}


def shape_mask(shape: str, w: int, h: int | None = None) -> np.ndarray:
    """Boolean (h, w) mask of ``shape`` drawn in a w x h box."""
    if shape not in _MASKS:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
    h = w if h is None else h
    if w < 1 or h < 1:
        raise ValueError(f"box must be at least 1 x 1, got {w} x {h}")
    return _MASKS[shape](w, h)


def soft_shape_mask(shape: str, w: int, h: int, supersample: int = 4) -> np.ndarray:
    """Float (h, w) coverage in [0, 1]: the mask drawn ``supersample`` times larger, area-averaged."""
    big = shape_mask(shape, w * supersample, h * supersample).astype(np.float64)
    return big.reshape(h, supersample, w, supersample).mean(axis=(1, 3))


def render_scene(scene: Scene) -> np.ndarray:
    """The scene as a (64, 64, 3) uint8 RGB array on black."""
    canvas = np.zeros((CANVAS, CANVAS, 3), dtype=np.uint8)
    for obj in scene.objects:
        s = obj.size_px
        box = canvas[obj.y0 : obj.y0 + s, obj.x0 : obj.x0 + s]
        box[shape_mask(obj.shape, s)] = COLOURS[obj.colour]
    return canvas
