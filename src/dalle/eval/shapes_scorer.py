"""The shapes scorer (spec "Scoring a generated image against its prompt").

``analyse_image`` finds the objects in an image; ``score_image`` checks them against a prompt and
says which attributes (count, colour, shape, size, relation) are wrong.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from dalle.shapes.captions import ObjectSpec, Prompt, parse_caption
from dalle.shapes.render import soft_shape_mask
from dalle.shapes.spec import COLOURS, RELATION_AXIS, SHAPES

BRIGHT = 110  # a pixel belongs to an object when its brightest channel is at least this
MIN_PIXELS = 20  # smaller connected regions are not objects
CORE_FRACTION = 0.8  # the bright core: pixels within 80 % of the region's peak brightness
MAX_COLOUR_DISTANCE = 100.0
SMALL_BELOW = 17  # bounding box longer side under this is "small"
ATTRIBUTES = ("count", "colour", "shape", "size", "relation")

_PALETTE_NAMES = tuple(COLOURS)
_PALETTE = np.array([COLOURS[c] for c in _PALETTE_NAMES], dtype=np.float64)  # (8, 3)


@dataclass(frozen=True)
class DetectedObject:
    colour: str | None  # None when no palette colour is within MAX_COLOUR_DISTANCE
    shape: str
    size: str
    bbox: tuple[int, int, int, int]  # x_min, y_min, x_max, y_max (inclusive)
    pixels: int

    @property
    def centre(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.bbox
        return (x0 + x1) / 2, (y0 + y1) / 2


@dataclass(frozen=True)
class ScoreResult:
    correct: bool
    errors: frozenset[str] = field(default_factory=frozenset)  # a subset of ATTRIBUTES
    objects: tuple[DetectedObject, ...] = ()


def connected_regions(mask: np.ndarray) -> list[np.ndarray]:
    """8-connected regions of a boolean (H, W) mask, each as an (N, 2) array of (y, x)."""
    h, w = mask.shape
    seen = np.zeros_like(mask, dtype=bool)
    regions = []
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if seen[y0, x0]:
            continue
        seen[y0, x0] = True
        queue, members = deque([(y0, x0)]), []
        while queue:
            y, x = queue.popleft()
            members.append((y, x))
            for ny in range(max(y - 1, 0), min(y + 2, h)):
                for nx in range(max(x - 1, 0), min(x + 2, w)):
                    if mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        queue.append((ny, nx))
        regions.append(np.array(members, dtype=np.int64))
    return regions


def _classify_colour(rgb: np.ndarray, brightness: np.ndarray) -> str | None:
    core = rgb[brightness >= CORE_FRACTION * brightness.max()]
    median = np.median(core.astype(np.float64), axis=0)
    dist = np.linalg.norm(_PALETTE - median, axis=1)
    best = int(np.argmin(dist))
    return _PALETTE_NAMES[best] if dist[best] < MAX_COLOUR_DISTANCE else None


def _classify_shape(region: np.ndarray, brightness: np.ndarray) -> str:
    ys, xs = region[:, 0], region[:, 1]
    y0, x0 = ys.min(), xs.min()
    h, w = ys.max() - y0 + 1, xs.max() - x0 + 1
    soft = np.zeros((h, w))  # the region's own coverage: brightness relative to its peak
    soft[ys - y0, xs - x0] = np.clip(brightness / brightness.max(), 0.0, 1.0)

    def soft_iou(shape: str) -> float:
        template = soft_shape_mask(shape, int(w), int(h))
        return float(np.minimum(soft, template).sum() / np.maximum(soft, template).sum())

    return max(SHAPES, key=soft_iou)


def analyse_image(image: np.ndarray) -> list[DetectedObject]:
    """The objects of an (H, W, 3) uint8 RGB image, in raster order of their first pixel."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    peak = image.max(axis=2)
    objects = []
    for region in connected_regions(peak >= BRIGHT):
        if len(region) < MIN_PIXELS:
            continue
        ys, xs = region[:, 0], region[:, 1]
        rgb, brightness = image[ys, xs], peak[ys, xs].astype(np.float64)
        bbox = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
        longer = max(bbox[2] - bbox[0], bbox[3] - bbox[1]) + 1
        objects.append(
            DetectedObject(
                colour=_classify_colour(rgb, brightness),
                shape=_classify_shape(region, brightness),
                size="small" if longer < SMALL_BELOW else "large",
                bbox=bbox,
                pixels=len(region),
            )
        )
    return objects


def _object_errors(found: DetectedObject, wanted: ObjectSpec) -> set[str]:
    errors = set()
    if found.colour != wanted.colour:
        errors.add("colour")
    if found.shape != wanted.shape:
        errors.add("shape")
    if wanted.size is not None and found.size != wanted.size:
        errors.add("size")
    return errors


def _relation_holds(a: DetectedObject, b: DetectedObject, relation: str) -> bool:
    axis, sign = RELATION_AXIS[relation]
    d = np.subtract(b.centre, a.centre)  # displacement from A to B
    return abs(d[axis]) > abs(d[1 - axis]) and np.sign(d[axis]) == sign


def match_prompt(objects: list[DetectedObject], prompt: Prompt) -> frozenset[str]:
    """The attributes that are wrong under the best assignment of objects to the prompt's."""
    if len(objects) != len(prompt.objects):
        return frozenset({"count"})
    best: set[str] | None = None
    for order in itertools.permutations(objects):
        errors = set().union(
            *(_object_errors(f, w) for f, w in zip(order, prompt.objects, strict=True))
        )
        if prompt.relation is not None and not _relation_holds(*order, prompt.relation):
            errors.add("relation")
        if best is None or len(errors) < len(best):
            best = errors
    return frozenset(best or ())


def score_image(image: np.ndarray, prompt: str | Prompt) -> ScoreResult:
    """Whether ``image`` shows exactly what ``prompt`` says, and what is wrong if not."""
    if isinstance(prompt, str):
        prompt = parse_caption(prompt)
    objects = analyse_image(image)
    errors = match_prompt(objects, prompt)
    return ScoreResult(correct=not errors, errors=errors, objects=tuple(objects))
