"""The normative constants of the shapes world (``shared/specs/shapes.md``, spec v1)."""

from __future__ import annotations

from dataclasses import dataclass

CANVAS = 64  # 64 x 64 RGB, black background
BORDER = 2  # every object lies at least this many pixels inside the border
MIN_GAP = 3  # bounding boxes of two objects are at least this far apart along the separating axis

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 20),
    "yellow": (240, 220, 40),
    "green": (40, 190, 60),
    "cyan": (40, 200, 220),
    "blue": (40, 80, 230),
    "purple": (150, 60, 210),
    "white": (235, 235, 235),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
SIZES: dict[str, tuple[int, int]] = {"small": (10, 14), "large": (20, 26)}  # inclusive ranges of s
RELATIONS: tuple[str, ...] = ("to the left of", "to the right of", "above", "below")

# (colour, shape) pairs that never appear in the train split, alone or in pairs.
HELD_OUT_PAIRS: frozenset[tuple[str, str]] = frozenset(
    {("green", "triangle"), ("yellow", "circle"), ("blue", "cross"), ("purple", "square")}
)
ALL_PAIRS: tuple[tuple[str, str], ...] = tuple((c, s) for c in COLOURS for s in SHAPES)
SPLITS: tuple[str, ...] = ("train", "test")

# Relation -> (axis, sign): the displacement B - A must point along this axis and sign.
# axis 0 is x (grows rightwards), 1 is y (grows downwards).
RELATION_AXIS: dict[str, tuple[int, int]] = {
    "to the left of": (0, +1),  # B is right of A, so xb - xa > 0
    "to the right of": (0, -1),
    "above": (1, +1),  # A above B: yb - ya > 0
    "below": (1, -1),
}
MIN_RELATION_OFFSET = 14  # the dominant displacement is at least this many pixels


@dataclass(frozen=True)
class ShapeObject:
    """One object: its box is ``size_px`` square with top-left corner (x0, y0)."""

    colour: str
    shape: str
    size: str  # "small" | "large"
    x0: int
    y0: int
    size_px: int

    @property
    def centre(self) -> tuple[float, float]:
        half = (self.size_px - 1) / 2
        return self.x0 + half, self.y0 + half


@dataclass(frozen=True)
class Scene:
    """One image of the shapes world: one object, or two objects and the relation of A to B."""

    objects: tuple[ShapeObject, ...]
    relation: str | None = None  # "A RELATION B" with A = objects[0], B = objects[1]


def is_held_out(colour: str, shape: str) -> bool:
    return (colour, shape) in HELD_OUT_PAIRS
