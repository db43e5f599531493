"""Canonical evaluation prompts for the shapes world, as deterministic functions of size and seed.

Two mixes:

- ``users`` (the default): the prompts people write once they combine objects. Three quarters
  two-object, most of those stating the size of one or both objects; a quarter of each kind names
  a held-out colour/shape pair.
- ``balanced`` (the first one, kept to reproduce older figures): half one-object (a size stated
  half of the time), half two-object with no sizes; every fourth prompt held-out.
"""

from __future__ import annotations

from dalle.shapes.captions import ObjectSpec, Prompt
from dalle.shapes.sampling import HashRandom
from dalle.shapes.spec import COLOURS, RELATIONS, SHAPES, SIZES, is_held_out

SAMPLE_PROMPTS = (
    "a red circle",
    "a large blue square",
    "a small yellow triangle to the left of a large white cross",
    "a green circle above an orange square",
)
MIXES = ("users", "balanced")
# users mix: (probability, sizes stated on (first, second)) for two-object prompts
_TWO_OBJECT_SIZES = ((0.4, (True, True)), (0.2, (True, False)), (0.2, (False, True)))
_HELD_OUT_SLOTS = frozenset({0, 5, 10, 15})  # of i % 16: one in four of each kind


def _object(rng: HashRandom, held_out: bool | None, size: bool) -> ObjectSpec:
    while True:
        colour, shape = rng.choice(tuple(COLOURS)), rng.choice(SHAPES)
        if held_out is None or is_held_out(colour, shape) == held_out:
            return ObjectSpec(colour, shape, rng.choice(tuple(SIZES)) if size else None)


def _pair(rng: HashRandom, held: bool, sizes: tuple[bool, bool]) -> Prompt:
    pair = [_object(rng, held, sizes[0]), _object(rng, False, sizes[1])]
    if rng.random() < 0.5:  # the held-out object goes first or second
        pair.reverse()
    return Prompt(tuple(pair), rng.choice(RELATIONS))


def _two_object_sizes(rng: HashRandom) -> tuple[bool, bool]:
    u = rng.random()
    for p, stated in _TWO_OBJECT_SIZES:
        if u < p:
            return stated
        u -= p
    return (False, False)


def _users_prompt(i: int, rng: HashRandom) -> Prompt:
    held = i % 16 in _HELD_OUT_SLOTS
    if i % 4 == 0:
        return Prompt((_object(rng, held, size=rng.random() < 0.5),))
    return _pair(rng, held, _two_object_sizes(rng))


def _balanced_prompt(i: int, rng: HashRandom) -> Prompt:
    held = i % 4 == 3
    if i % 2 == 0:
        return Prompt((_object(rng, held, size=rng.random() < 0.5),))
    return _pair(rng, held, (False, False))


MAX_TRIES = 2_000  # draws of one slot's kind that all repeat an earlier prompt: none is left


def evaluation_prompts(n: int = 128, seed: int = 0, mix: str = "users") -> list[str]:
    """``n`` distinct canonical prompts of the given mix (see the module's docstring)."""
    if mix not in MIXES:
        raise ValueError(f"unknown prompt mix {mix!r}; expected one of {', '.join(MIXES)}")
    if n < 0:
        raise ValueError(f"the number of prompts must be at least 0, got {n}")
    make = _users_prompt if mix == "users" else _balanced_prompt
    key = ("shapes-eval-prompts", seed) if mix == "balanced" else ("shapes-eval-users", seed)
    rng = HashRandom(*key)
    prompts: list[str] = []
    seen, tries = set(), 0
    while len(prompts) < n:
        text = make(len(prompts), rng).canonical()
        if text not in seen:
            prompts.append(text)
            seen.add(text)
            tries = 0
        elif (tries := tries + 1) > MAX_TRIES:  # this slot's kind of prompt is used up
            raise ValueError(
                f"the {mix} mix holds {len(prompts)} distinct prompts with its proportions, not "
                f"{n}: ask for at most {len(prompts)}"
            )
    return prompts
