"""Scenes as deterministic functions of (split, index, seed).

Random numbers come from BLAKE2b in counter mode keyed by (split, seed, index), so an example never
depends on numpy's or Python's generator versions, on the platform, or on any other example.
"""

from __future__ import annotations

import hashlib
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

from dalle.shapes.spec import (
    ALL_PAIRS,
    BORDER,
    CANVAS,
    HELD_OUT_PAIRS,
    MIN_GAP,
    MIN_RELATION_OFFSET,
    RELATION_AXIS,
    RELATIONS,
    SIZES,
    SPLITS,
    Scene,
    ShapeObject,
)

T = TypeVar("T")

if TYPE_CHECKING:  # captions imports this module
    from dalle.shapes.captions import Prompt

TRAIN_PAIRS: tuple[tuple[str, str], ...] = tuple(p for p in ALL_PAIRS if p not in HELD_OUT_PAIRS)
TWO_OBJECT_PROB = 0.5


class HashRandom:
    """A tiny, platform-independent random stream: BLAKE2b(key || counter)."""

    def __init__(self, *key: object) -> None:
        # a key's integers by value: numpy's (whose repr differs, and between numpy versions)
        # key the same stream as Python's
        key = tuple(int(k) if isinstance(k, numbers.Integral) and not isinstance(k, bool) else k
                    for k in key)  # fmt: skip
        self._key = repr(key).encode("utf-8")
        self._counter = 0

    def _u64(self) -> int:
        digest = hashlib.blake2b(
            self._key + self._counter.to_bytes(8, "little"), digest_size=8
        ).digest()
        self._counter += 1
        return int.from_bytes(digest, "little")

    def random(self) -> float:
        """Uniform in [0, 1) with 53 bits."""
        return (self._u64() >> 11) / float(1 << 53)

    def randint(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi] (both inclusive); the modulo bias is below 2^-50."""
        if hi < lo:
            raise ValueError(f"empty range [{lo}, {hi}]")
        return lo + self._u64() % (hi - lo + 1)

    def choice(self, items: Sequence[T]) -> T:
        return items[self.randint(0, len(items) - 1)]


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown shapes split {split!r}; expected one of {SPLITS}")


def _random_object(rng: HashRandom, pairs: Sequence[tuple[str, str]]) -> tuple[str, str, str, int]:
    colour, shape = rng.choice(pairs)
    size = rng.choice(("small", "large"))
    lo, hi = SIZES[size]
    return colour, shape, size, rng.randint(lo, hi)


def _place_one(rng: HashRandom, spec: tuple[str, str, str, int]) -> ShapeObject:
    colour, shape, size, s = spec
    hi = CANVAS - BORDER - s
    return ShapeObject(colour, shape, size, rng.randint(BORDER, hi), rng.randint(BORDER, hi), s)


def satisfies_relation(a: ShapeObject, b: ShapeObject, relation: str) -> bool:
    """The spec's rule for "A RELATION B" plus the minimum gap between the two boxes."""
    axis, sign = RELATION_AXIS[relation]
    ca, cb = a.centre, b.centre
    along = sign * (cb[axis] - ca[axis])
    across = abs(cb[1 - axis] - ca[1 - axis])
    if along < MIN_RELATION_OFFSET or across > along / 2:
        return False
    first, second = (a, b) if sign > 0 else (b, a)  # first lies before second along the axis
    start_first = (first.x0, first.y0)[axis]
    start_second = (second.x0, second.y0)[axis]
    gap = start_second - (start_first + first.size_px)  # empty pixels between the boxes
    return gap >= MIN_GAP


def sample_scene(split: str, index: int, seed: int = 0) -> Scene:
    """The scene at ``index`` of ``split`` for ``seed``: one or two objects, never a held-out
    (colour, shape) pair in ``train``; ``test`` draws from all 32 pairs."""
    _check_split(split)
    rng = HashRandom("shapes-v1", split, int(seed), int(index))
    pairs = TRAIN_PAIRS if split == "train" else ALL_PAIRS
    if rng.random() >= TWO_OBJECT_PROB:
        return Scene((_place_one(rng, _random_object(rng, pairs)),))
    relation = rng.choice(RELATIONS)
    while True:  # re-draw sizes too, in case a pair of large objects rarely fits
        spec_a, spec_b = _random_object(rng, pairs), _random_object(rng, pairs)
        for _ in range(200):
            a, b = _place_one(rng, spec_a), _place_one(rng, spec_b)
            if satisfies_relation(a, b, relation):
                return Scene((a, b), relation)


def scene_for_prompt(prompt: Prompt, *key: object) -> Scene:
    """A scene that realises ``prompt`` (a size the prompt leaves open drawn at random, positions
    that satisfy its relation), drawn from a hash of ``key``: one image a caption describes."""
    rng = HashRandom("shapes-v1-prompt", *key)

    def spec(obj) -> tuple[str, str, str, int]:
        size = obj.size if obj.size is not None else rng.choice(("small", "large"))
        lo, hi = SIZES[size]
        return obj.colour, obj.shape, size, rng.randint(lo, hi)

    if prompt.relation is None:
        return Scene((_place_one(rng, spec(prompt.objects[0])),))
    while True:
        spec_a, spec_b = spec(prompt.objects[0]), spec(prompt.objects[1])
        for _ in range(200):
            a, b = _place_one(rng, spec_a), _place_one(rng, spec_b)
            if satisfies_relation(a, b, prompt.relation):
                return Scene((a, b), prompt.relation)
